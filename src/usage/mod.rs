//! Usage and finish reasons only in the last chunk, then `[DONE]`.
//!
//! Providers scatter usage: on every chunk (vLLM continuous usage, Gemini running totals), on
//! the finish chunk (Mistral, Groq's `x_groq.usage`, llama.cpp), in a separate `choices: []`
//! chunk (OpenAI), in a chunk that still has choices (OpenRouter). Clients of the standard
//! stream find both in exactly one place: the last chunk before `[DONE]`, which lists every
//! choice with `delta: {}` and its `finish_reason`, and `usage` when the upstream reported any
//! (never fabricated zeros). A chunk with content and a finish reason is split: the content
//! stays where it was, the finish reason moves to the last chunk.
//!
//! [`UsageLastChunkLayer`] applies [`ChatNormalizer`] to `text/event-stream` responses. Put it
//! outside [`SseReframeLayer`](crate::reframe::SseReframeLayer): it expects one canonical
//! event per frame. Chunks that carry neither a non-null `finish_reason` nor a `usage`
//! object pass through without being parsed, so `"usage": null` on content chunks (as OpenAI
//! sends them with `include_usage`) stays: null reports no usage.
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use http::{Request, Response};
//! use http_body::Frame;
//! use http_body_util::{BodyExt, StreamBody};
//! use tower::{ServiceBuilder, ServiceExt};
//! use tower_llm_stream::reframe::SseReframeLayer;
//! use tower_llm_stream::usage::UsageLastChunkLayer;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let upstream = tower::service_fn(|_req: Request<()>| async {
//!     let stream = concat!(
//!         "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",",
//!         "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":\"stop\"}],",
//!         "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1,\"total_tokens\":4}}\n\n",
//!         "data: [DONE]\n\n",
//!     );
//!     let body = StreamBody::new(futures_util::stream::iter([Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from(stream)))]));
//!     Ok::<_, std::convert::Infallible>(Response::builder().header("content-type", "text/event-stream").body(body).unwrap())
//! });
//! let service = ServiceBuilder::new()
//!     .layer(UsageLastChunkLayer::new())
//!     .layer(SseReframeLayer::new())
//!     .service(upstream);
//! let body = service.oneshot(Request::new(())).await.unwrap().into_body();
//! let text = String::from_utf8(body.collect().await.unwrap().to_bytes().to_vec()).unwrap();
//! assert_eq!(text, concat!(
//!     "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",",
//!     "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n",
//!     "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",",
//!     "\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],",
//!     "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1,\"total_tokens\":4}}\n\n",
//!     "data: [DONE]\n\n",
//! ));
//! # }
//! ```

mod body;
mod future;
mod layer;
mod normalizer;
mod service;

pub use self::body::UsageBody;
pub use self::future::ResponseFuture;
pub use self::layer::UsageLastChunkLayer;
pub use self::normalizer::ChatNormalizer;
pub use self::service::UsageLastChunk;
