//! Anthropic's Messages API: its stream dialect ([`AnthropicMessages`]) and, with the
//! `provider` feature, the translation of an OpenAI chat request into a Messages request.

#[cfg(feature = "provider")]
pub(crate) mod client;
mod dialect;
mod native;
#[cfg(feature = "provider")]
pub(crate) mod request;

pub use self::dialect::AnthropicMessages;
pub use self::native::AnthropicNative;
