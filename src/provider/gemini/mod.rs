//! Google's Gemini API (`streamGenerateContent?alt=sse`): its stream dialect ([`Gemini`])
//! and, with the `provider` feature, the request translation.

#[cfg(feature = "provider")]
pub(crate) mod client;
mod dialect;
mod native;
#[cfg(feature = "provider")]
pub(crate) mod request;

pub use self::dialect::Gemini;
pub use self::native::GeminiNative;
