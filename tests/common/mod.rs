//! Helpers shared by the integration tests: the test-support crate's, and the servers of the
//! end-to-end tests.
#![allow(dead_code, unused_imports)]

pub use tower_llm_stream_test_support::*;

pub mod servers;
