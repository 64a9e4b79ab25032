#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(
    clippy::all,
    clippy::dbg_macro,
    clippy::todo,
    clippy::empty_enums,
    clippy::enum_glob_use,
    clippy::mem_forget,
    clippy::unused_self,
    clippy::filter_map_next,
    clippy::needless_continue,
    clippy::needless_borrow,
    clippy::match_wildcard_for_single_variants,
    clippy::if_let_mutex,
    clippy::await_holding_lock,
    clippy::imprecise_flops,
    clippy::suboptimal_flops,
    clippy::lossy_float_literal,
    clippy::rest_pat_in_fully_bound_structs,
    clippy::fn_params_excessive_bools,
    clippy::exit,
    clippy::inefficient_to_string,
    clippy::linkedlist,
    clippy::macro_use_imports,
    clippy::option_option,
    clippy::verbose_file_reads,
    clippy::unnested_or_patterns,
    clippy::must_use_candidate,
    rust_2018_idioms,
    future_incompatible,
    nonstandard_style,
    missing_debug_implementations,
    missing_docs,
    unreachable_pub
)]
#![allow(elided_lifetimes_in_paths, clippy::type_complexity)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod body_util;
pub mod dialect;
pub mod error;
pub mod error_event;
pub mod eventstream;
pub mod fallback;
pub mod labels;
pub mod ndjson;
pub mod observe;
pub mod provider;
pub mod redact;
pub mod reframe;
pub mod render;
pub mod resume;
pub mod sse;
pub mod stack;
pub mod standard;
pub mod timeout;
pub mod usage;

pub use error::{BoxError, StreamError};
pub use error_event::ErrorEventLayer;
pub use observe::ObserveLayer;
pub use redact::RedactLayer;
pub use reframe::SseReframeLayer;
pub use render::RenderLayer;
pub use stack::{LlmStream, LlmStreamLayer};
pub use timeout::StreamTimeoutLayer;
pub use usage::UsageLastChunkLayer;
