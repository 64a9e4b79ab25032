//! Per-request timeouts for streaming responses: the response head, the gap between events,
//! and an optional total deadline.
//!
//! [`StreamTimeoutLayer::new`] waits at most 30 s for the response head and at most 30 s
//! between two events (the first event included); the total deadline is off. All three are
//! [`StreamTimeouts`].
//!
//! - **Head timeout**: the inner future is dropped (cancelling the upstream request) and the
//!   client gets `504 Gateway Timeout` with `{"error":{"type":"timeout_error",
//!   "code":"upstream_timeout",…}}`.
//! - **Idle or total timeout mid-stream**: the body fails with a
//!   [`StreamError::IdleTimeout`](crate::StreamError::IdleTimeout) or
//!   [`StreamError::Deadline`](crate::StreamError::Deadline), which
//!   [`ErrorEventLayer`](crate::error_event::ErrorEventLayer) renders as an error event
//!   (`stream_idle_timeout`, `stream_deadline`).
//!
//! The idle timer and keep-alives apply to `text/event-stream` responses only; any other body
//! (a JSON reply, audio) passes byte for byte under the head timeout and the total deadline.
//!
//! Only events count as activity: comment-only frames (an upstream's `: keep-alive`) do not
//! reset the idle timer. Place the layer outside [`SseReframeLayer`](crate::reframe::SseReframeLayer)
//! so that frames are whole events.
//!
//! **Per request**, a [`StreamTimeouts`] request extension replaces the layer's timeouts (for
//! servers that decide per route or per tenant). Opt in to a header with
//! [`StreamTimeoutLayer::override_header`]: its value in seconds (decimals allowed, e.g.
//! `x-request-timeout: 2.5`) sets the head and idle timeouts, clamped to a maximum; a value
//! that is not a positive number gets `400` with a JSON error naming the header.
//!
//! **Keep-alives** ([`StreamTimeoutLayer::keep_alive`], off by default) send a `: keep-alive`
//! comment frame whenever nothing was sent for the interval; they never count as upstream
//! activity.
//!
//! Timers cost nothing per event: the layer notes when the last event passed and re-arms its
//! single timer only when it fires.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use http::{HeaderName, Request, Response, StatusCode};
//! use tower::{ServiceBuilder, ServiceExt};
//! use tower_llm_stream::timeout::StreamTimeoutLayer;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let slow_upstream = tower::service_fn(|_req: Request<()>| async {
//!     tokio::time::sleep(Duration::from_secs(60)).await;
//!     Ok::<_, std::convert::Infallible>(Response::new(http_body_util::Empty::<bytes::Bytes>::new()))
//! });
//! let service = ServiceBuilder::new()
//!     .layer(StreamTimeoutLayer::new().override_header(HeaderName::from_static("x-request-timeout"), Duration::from_secs(300)))
//!     .service(slow_upstream);
//!
//! let response = service.clone().oneshot(Request::new(())).await.unwrap();
//! assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT); // after 30 s
//!
//! let request = Request::builder().header("x-request-timeout", "90").body(()).unwrap();
//! let response = service.oneshot(request).await.unwrap();
//! assert_eq!(response.status(), StatusCode::OK); // waited the 60 s
//! # }
//! ```

mod body;
mod future;
mod layer;
mod service;
mod shutdown;

pub use self::body::TimeoutBody;
pub use self::future::ResponseFuture;
pub use self::layer::StreamTimeoutLayer;
pub use self::service::StreamTimeout;
pub use self::shutdown::Shutdown;

use std::time::Duration;

/// The timeouts of one streaming request. `None` means no limit.
///
/// Also a request extension: inserted into a request, it replaces the layer's timeouts for
/// that request.
///
/// ```
/// use std::time::Duration;
/// use tower_llm_stream::timeout::StreamTimeouts;
///
/// let mut request = http::Request::new(());
/// request.extensions_mut().insert(StreamTimeouts {
///     total: Some(Duration::from_secs(600)),
///     ..StreamTimeouts::default()
/// });
/// assert_eq!(StreamTimeouts::default().idle, Some(Duration::from_secs(30)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamTimeouts {
    /// How long to wait for the response head.
    pub head: Option<Duration>,
    /// How long to wait for each event, the first one included.
    pub idle: Option<Duration>,
    /// How long the whole stream may take, from the request on.
    pub total: Option<Duration>,
}

/// The default head and idle timeout: 30 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

impl Default for StreamTimeouts {
    fn default() -> Self {
        StreamTimeouts {
            head: Some(DEFAULT_TIMEOUT),
            idle: Some(DEFAULT_TIMEOUT),
            total: None,
        }
    }
}

/// Parses a timeout header value: seconds, decimals allowed, at least 1 ms (the timer's
/// resolution: a shorter timeout would round to an instant `504`).
pub(crate) fn parse_seconds(value: &[u8]) -> Option<Duration> {
    let text = std::str::from_utf8(value).ok()?.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let secs: f64 = text.parse().ok()?;
    if secs < 0.001 || !secs.is_finite() {
        return None;
    }
    Duration::try_from_secs_f64(secs).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values() {
        assert_eq!(parse_seconds(b"2.5"), Some(Duration::from_millis(2500)));
        assert_eq!(parse_seconds(b" 10 "), Some(Duration::from_secs(10)));
        assert_eq!(parse_seconds(b".5"), Some(Duration::from_millis(500)));
        assert_eq!(parse_seconds(b"0.001"), Some(Duration::from_millis(1)));
        for bad in [
            &b""[..],
            b"0",
            b"0.0",
            b"0.0009",
            b"0.0000000001",
            b"-1",
            b"1e3",
            b"abc",
            b"inf",
            b"NaN",
            b"1.2.3",
            b"\xff",
            b"1s",
        ] {
            assert_eq!(
                parse_seconds(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
