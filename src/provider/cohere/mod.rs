//! Cohere's v2 chat API: its stream dialect ([`Cohere`]) and, with the `provider` feature,
//! the request translation.

mod dialect;
#[cfg(feature = "provider")]
pub(crate) mod request;

pub use self::dialect::Cohere;
