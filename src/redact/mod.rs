//! Never relay a configured secret that an upstream echoes back.
//!
//! Providers quote the API key they were sent in some errors: a `401` body "Incorrect API
//! key provided: sk-…", an in-stream error event. A proxy that holds the provider keys must
//! not hand them to its clients. [`RedactLayer`] rewrites every response body so that every
//! occurrence of a configured secret becomes [`REDACTED`] (`[redacted]`):
//!
//! - **Secrets**: given to [`RedactLayer::new`] (or as a [`Secrets`], which the application
//!   also uses to redact its log lines: [`Secrets::redact_str`]). Each is trimmed of
//!   surrounding ASCII whitespace; empty secrets and secrets shorter than 8 bytes
//!   ([`MIN_SECRET_LEN`]) are ignored: too short to be keys, they would redact ordinary text.
//! - **Matching** is on the raw bytes of the body, leftmost-longest, in one pass (one
//!   `aho-corasick` search per frame). A secret is found as given, not in an escaped form
//!   (`\/` in JSON, percent-encoding); provider keys (`[A-Za-z0-9_.-]`) read the same in
//!   JSON strings.
//! - **Streaming, bounded memory**: a secret may straddle two data frames, so the body keeps
//!   back only the tail of a frame that could be the start of a secret (fewer bytes than the
//!   longest secret) and puts it in front of the next frame; at the end of the body, before
//!   trailers and before an error, it sends what it kept back. Keys hold no newline, so an
//!   SSE frame (which ends with `\n\n`) keeps nothing back: events are not delayed (finding
//!   that out is one look at the frame's last byte). A frame
//!   without a secret and with nothing kept back passes as the same `Bytes`, not copied.
//! - **Headers**: `content-length` is removed (a replacement changes the length); everything
//!   else, trailers included, passes untouched.
//! - **No secrets, no work**: with no secret left, bodies and headers pass untouched.
//!
//! Place it outermost, so that it sees what the client sees (the normalized error bodies and
//! error events quote the upstream's message). It is not part of
//! [`LlmStreamLayer`](crate::LlmStreamLayer): the keys are the application's.
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use http::{Request, Response, StatusCode};
//! use http_body_util::{BodyExt, Full};
//! use tower::{ServiceBuilder, ServiceExt};
//! use tower_llm_stream::RedactLayer;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let upstream = tower::service_fn(|_req: Request<()>| async {
//!     let body = r#"{"error":{"message":"Incorrect API key provided: sk-proj-0123456789abcdef."}}"#;
//!     Ok::<_, std::convert::Infallible>(
//!         Response::builder()
//!             .status(StatusCode::UNAUTHORIZED)
//!             .header("content-length", body.len())
//!             .body(Full::new(Bytes::from(body)))
//!             .unwrap(),
//!     )
//! });
//! // In a proxy: the provider keys it was configured with.
//! let redact = RedactLayer::new(["sk-proj-0123456789abcdef"]);
//! let service = ServiceBuilder::new().layer(redact).service(upstream);
//!
//! let response = service.oneshot(Request::new(())).await.unwrap();
//! assert!(response.headers().get("content-length").is_none());
//! let body = response.into_body().collect().await.unwrap().to_bytes();
//! assert_eq!(body, r#"{"error":{"message":"Incorrect API key provided: [redacted]."}}"#);
//! # }
//! ```

mod body;
mod future;
mod layer;
mod secrets;
mod service;

#[cfg(test)]
mod tests;

pub use self::body::RedactBody;
pub use self::future::ResponseFuture;
pub use self::layer::RedactLayer;
pub use self::secrets::{MIN_SECRET_LEN, REDACTED, Secrets};
pub use self::service::Redact;
