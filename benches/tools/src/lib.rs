//! The performance runner's tools (`benches/proxy_compare.py` drives them): a streaming load
//! generator ([`load`], [`report`]; the `loadgen` binary), a mock OpenAI upstream ([`mock`];
//! `mock_upstream`), and two floors to measure the proxy against: a bare TCP relay
//! (`tcp_relay`) and the proxy without its layers (`proxy_floor`).

pub mod load;
pub mod mock;
pub mod report;
