//! # tower-llm-stream
//!
//! Composable [tower] layers that turn any LLM provider's streaming response into one
//! standard, well-formed server-sent event stream.
//!
//! - [`sse`]: the wire format. A WHATWG-exact, zero-copy incremental decoder and an encoder.
//!
//! [tower]: https://docs.rs/tower
#![deny(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod body_util;
pub mod dialect;
pub mod error;
pub mod error_event;
pub mod eventstream;
pub mod ndjson;
#[cfg(feature = "provider")]
#[cfg_attr(docsrs, doc(cfg(feature = "provider")))]
pub mod provider;
pub mod reframe;
pub mod sse;
pub mod standard;
pub mod timeout;
pub mod usage;

pub use error::{BoxError, StreamError};
