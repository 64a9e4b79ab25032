//! Re-chunks an upstream event stream into exactly one complete, canonical event per body
//! frame, and translates its dialect.
//!
//! Upstream providers' bytes arrive in arbitrary transport chunks: an event split across two
//! TCP reads, five events in one, CRLF line endings, a BOM. [`SseReframeLayer`] wraps the
//! response body so that every data frame it yields is one whole block (an event, or a comment
//! block such as a keep-alive) with LF line endings, valid UTF-8 and no BOM, yielded as soon as
//! it is complete. A [`Dialect`](crate::dialect::Dialect) translates the upstream's events
//! into the canonical stream; the default, [`Passthrough`](crate::dialect::Passthrough), forwards them as they are and
//! detects streams that end without their terminator.
//!
//! The dialect is the layer's (cloned for each response), unless the response or the request
//! carries an extension of the same type, which wins (response first): a handler that knows
//! the provider names it, e.g. with an [`AnyDialect`](crate::provider::AnyDialect).
//!
//! Only `text/event-stream` responses are reframed, and the framing a dialect reads
//! ([`Dialect::framing`](crate::dialect::Dialect::framing)): `application/x-ndjson` for
//! [`Ollama`](crate::provider::ollama::Ollama), `application/vnd.amazon.eventstream` for
//! [`Bedrock`](crate::provider::bedrock::Bedrock); they become `text/event-stream`. Others pass through
//! untouched. Reframed
//! responses lose `Content-Length` and get `Cache-Control: no-cache` and
//! `X-Accel-Buffering: no`; trailers are kept.
//!
//! Failures make the body return an error after the frames before it: an oversized event
//! ([`StreamError::EventTooLarge`](crate::StreamError::EventTooLarge)), a stream cut off
//! mid-event or without its terminator ([`Truncated`](crate::StreamError::Truncated)), an
//! upstream body error ([`Upstream`](crate::StreamError::Upstream)).
//! [`ErrorEventLayer`](crate::error_event::ErrorEventLayer) turns them into error events.
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use http::{Request, Response};
//! use http_body_util::{BodyExt, StreamBody};
//! use http_body::Frame;
//! use std::convert::Infallible;
//! use tower::{ServiceBuilder, ServiceExt};
//! use tower_llm_stream::reframe::SseReframeLayer;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // An upstream that splits events at awkward places.
//! let upstream = tower::service_fn(|_req: Request<()>| async {
//!     let chunks = ["data: {\"a\"", ":1}\r\n\r\ndata: [DO", "NE]\r\n\r\n"];
//!     let body = StreamBody::new(futures_util::stream::iter(
//!         chunks.map(|c| Ok::<_, Infallible>(Frame::data(Bytes::from(c)))),
//!     ));
//!     Ok::<_, Infallible>(
//!         Response::builder().header("content-type", "text/event-stream").body(body).unwrap(),
//!     )
//! });
//! let service = ServiceBuilder::new().layer(SseReframeLayer::new()).service(upstream);
//!
//! let response = service.oneshot(Request::new(())).await.unwrap();
//! assert_eq!(response.headers()["cache-control"], "no-cache");
//! let mut body = response.into_body();
//! let mut frames = Vec::new();
//! while let Some(frame) = body.frame().await {
//!     frames.push(frame.unwrap().into_data().unwrap());
//! }
//! assert_eq!(frames, ["data: {\"a\":1}\n\n", "data: [DONE]\n\n"]);
//! # }
//! ```

mod body;
mod future;
mod layer;
mod service;

pub use self::body::ReframeBody;
pub use self::future::ResponseFuture;
pub use self::layer::SseReframeLayer;
pub use self::service::SseReframe;
