#![doc = include_str!("../README.md")]
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
pub mod stack;
pub mod standard;
pub mod timeout;
pub mod usage;

pub use error::{BoxError, StreamError};
pub use error_event::ErrorEventLayer;
pub use reframe::SseReframeLayer;
pub use stack::{LlmStream, LlmStreamLayer};
pub use timeout::StreamTimeoutLayer;
pub use usage::UsageLastChunkLayer;
