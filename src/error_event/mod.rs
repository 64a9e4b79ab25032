//! Renders every failure as the canonical error event, then ends the stream cleanly.
//!
//! Clients of an LLM gateway must be able to tell a complete answer from a broken one, and the
//! OpenAI SDKs read errors from the stream itself. [`ErrorEventLayer`] guarantees:
//!
//! - **Body errors become an error event**: a timeout, an oversized or malformed upstream
//!   event, an upstream reset, a stream that ended without its terminator (the typed
//!   [`StreamError`](crate::StreamError)s of the other layers, or any other body error) becomes
//!   `data: {"error":{"type":…,"code":…,"message":…}}`, and then the body ends: no `[DONE]`,
//!   and never an `Err` after the event, so the HTTP/1.1 chunked or HTTP/2 stream closes
//!   properly. In a Responses API stream the event is `event: error` with `"type":"error"` and
//!   the next `sequence_number`.
//! - **An error event from upstream ends the stream**: once a frame that is an error event
//!   (`data: {"error":…}` or `event: error`) has been forwarded, nothing follows it, except
//!   in a Responses API stream the `response.failed` terminal event OpenAI sends right after
//!   its `error` event.
//! - **Errors before the head keep their status**: an upstream `4xx`/`5xx` keeps its status
//!   and its body is normalized to `{"error":{"type","code","message"}}` (OpenAI, Anthropic,
//!   Gemini, Ollama, Cohere and plain-text shapes understood; the body is read up to 64 KiB);
//!   an inner service error (no response at all, e.g. the upstream refused the connection)
//!   becomes `502` with code `upstream_unavailable`.
//! - **Every error is also a `tracing` event** (`WARN`, with `error.type`, `error.code`,
//!   `message`).
//!
//! It renders errors and nothing else: the per-stream span and summary are
//! [`ObserveLayer`](crate::observe::ObserveLayer)'s. Apply it to LLM routes only (axum's
//! `Router::route_layer`, or a nested router): it normalizes every `4xx`/`5xx` body it sees.
//!
//! Panics are not its business: put tower-http's `CatchPanicLayer` outside it (see
//! `examples/axum.rs`).
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use http::{Request, Response};
//! use http_body::Frame;
//! use http_body_util::{BodyExt, StreamBody};
//! use tower::{ServiceBuilder, ServiceExt};
//! use tower_llm_stream::error_event::ErrorEventLayer;
//! use tower_llm_stream::reframe::SseReframeLayer;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // An upstream whose connection resets after one event.
//! let upstream = tower::service_fn(|_req: Request<()>| async {
//!     let frames: Vec<Result<Frame<Bytes>, std::io::Error>> = vec![
//!         Ok(Frame::data(Bytes::from("data: {\"x\":1}\n\n"))),
//!         Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "connection reset")),
//!     ];
//!     let body = StreamBody::new(futures_util::stream::iter(frames));
//!     Ok::<_, std::convert::Infallible>(
//!         Response::builder().header("content-type", "text/event-stream").body(body).unwrap(),
//!     )
//! });
//! let service = ServiceBuilder::new()
//!     .layer(ErrorEventLayer::new())
//!     .layer(SseReframeLayer::new())
//!     .service(upstream);
//!
//! let body = service.oneshot(Request::new(())).await.unwrap().into_body();
//! let text = body.collect().await.unwrap().to_bytes(); // never an Err
//! assert_eq!(
//!     text,
//!     "data: {\"x\":1}\n\ndata: {\"error\":{\"type\":\"upstream_error\",\"code\":\"upstream_body_error\",\
//!      \"message\":\"the upstream connection failed: connection reset\"}}\n\n"
//! );
//! # }
//! ```

mod body;
mod future;
mod layer;
mod render;
mod service;

pub use self::body::ErrorEventBody;
pub use self::future::ResponseFuture;
pub use self::layer::ErrorEventLayer;
pub use self::service::ErrorEvent;
