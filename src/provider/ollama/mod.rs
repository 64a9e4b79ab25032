//! Ollama's native API (`/api/chat`, NDJSON): its stream dialect ([`Ollama`]) and, with the
//! `provider` feature, the request translation.

mod dialect;
#[cfg(feature = "provider")]
pub(crate) mod request;

pub use self::dialect::Ollama;
