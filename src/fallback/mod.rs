//! Falls back to another target until a stream commits.
//!
//! Until the first content event reaches the client nothing is committed: a failed attempt
//! can be replaced by another target's without the client seeing it. [`FallbackLayer`] tries
//! the request's targets in turn (the request itself first, then those of its
//! [`FallbackTargets`] extension) until one commits:
//!
//! - **Failures, before the commit**: no response (the inner service failed), `429`, any
//!   `5xx` (behind [`ErrorEventLayer`](crate::ErrorEventLayer): a refused or reset
//!   connection is a `502`, a head timeout a `504`), an error event or the end of the body
//!   before the first content event (a truncation, an idle timeout). A `Retry-After` is
//!   noted in the attempt (and so in the span), never slept on.
//! - **The client's**: any other `4xx` is returned at once, no fallback.
//! - **Commit**: the first content event (a delta with text, a tool call, reasoning, audio; a
//!   finish reason; `[DONE]`), or a successful response that is not an event stream. What
//!   came before it (a role chunk, the Responses `response.created` and `in_progress`
//!   events, keep-alives) is held back and sent with it: nothing a failed attempt produced
//!   reaches the client. After the commit an upstream failure is an error event as before.
//!
//! A failed attempt's response is dropped at once, and with it its upstream request. The
//! response of the target that served carries its [`StreamLabels`](crate::labels::StreamLabels)
//! and a [`FallbackAttempts`] extension listing the failures before it, which
//! [`ObserveLayer`](crate::ObserveLayer) records (span field `fallbacks`, summary
//! [`fallbacks`](crate::observe::StreamSummary::fallbacks)). When every target fails, the
//! last failure is the answer, as it came.
//!
//! The layer reads the standard stream: place it inside `ObserveLayer` and outside
//! `ErrorEventLayer`, as [`LlmStreamLayer`](crate::LlmStreamLayer) does. Requests without
//! targets pass straight through; after the commit each frame costs one `match`.
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use http::{Request, Response, StatusCode};
//! use http_body_util::{BodyExt, Full};
//! use tower::{ServiceBuilder, ServiceExt};
//! use tower_llm_stream::fallback::{FallbackLayer, FallbackTargets};
//! use tower_llm_stream::labels::FallbackAttempts;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // The primary is rate limited; the backup streams.
//! let upstream = tower::service_fn(|req: Request<Full<Bytes>>| async move {
//!     let response = if req.uri().host() == Some("primary") {
//!         Response::builder().status(StatusCode::TOO_MANY_REQUESTS).header("retry-after", "3").body(Full::default())
//!     } else {
//!         Response::builder()
//!             .header("content-type", "text/event-stream")
//!             .body(Full::new(Bytes::from_static(b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\n\ndata: [DONE]\n\n")))
//!     };
//!     Ok::<_, std::convert::Infallible>(response.unwrap())
//! });
//! let service = ServiceBuilder::new().layer(FallbackLayer::new()).service(upstream);
//!
//! let mut request = Request::get("http://primary/v1/chat/completions").body(Full::<Bytes>::default()).unwrap();
//! request.extensions_mut().insert(FallbackTargets::new().then(|| {
//!     Ok(Request::get("http://backup/v1/chat/completions").body(Full::<Bytes>::default()).unwrap())
//! }));
//! let response = service.oneshot(request).await.unwrap();
//! assert_eq!(response.status(), StatusCode::OK);
//! let attempts = response.extensions().get::<FallbackAttempts>().unwrap();
//! assert_eq!(attempts.to_string(), "429 rate_limited (retry-after 3)");
//! let body = response.into_body().collect().await.unwrap().to_bytes();
//! assert!(body.starts_with(b"data: {\"choices\""));
//! # }
//! ```

mod body;
mod commit;
mod future;
mod layer;
mod service;
mod targets;

pub use self::body::FallbackBody;
pub use self::future::ResponseFuture;
pub use self::layer::FallbackLayer;
pub use self::service::Fallback;
pub use self::targets::FallbackTargets;
pub use crate::labels::{FailedAttempt, FallbackAttempts};
