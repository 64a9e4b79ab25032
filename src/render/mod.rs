//! The standard chat stream rendered in the client's own API: OpenAI Responses, text
//! completions, Anthropic Messages, Gemini.
//!
//! The other layers produce one standard chat stream from any provider. [`RenderLayer`],
//! outermost, turns it into the API the client speaks, chosen per request by a [`ClientApi`]
//! request extension (absent: OpenAI chat, which passes through untouched at no cost). Because
//! it sits outside the others, what they report reaches the client in its own API's shape too:
//! a timeout, a truncated stream or an upstream error becomes an Anthropic `event: error`, a
//! Gemini `{"error":{"code","message","status"}}`, a Responses `error` then `response.failed`;
//! an error response before the stream (`4xx`/`5xx` JSON) is rewritten in the API's error
//! shape with its status kept.
//!
//! A stream that is already in the client's API (an Anthropic client in front of an
//! Anthropic upstream, the Responses API in front of an upstream that has it) is recognised
//! by its first event, which is not a chat chunk, and passes through byte for byte; only the
//! standard error events the inner layers add are rewritten.
//!
//! The mapping, per API:
//!
//! | standard chat | Responses | Anthropic Messages | Gemini |
//! |---|---|---|---|
//! | `delta.content` | `message` item, `output_text.delta` | `text` block, `text_delta` | `text` part |
//! | `delta.reasoning_content` | `reasoning` item, `reasoning_summary_text.delta` | `thinking` block, `thinking_delta` (+ `signature_delta` from `delta.reasoning_signature`) | part with `"thought": true` |
//! | `delta.refusal` | `refusal` part, `refusal.delta` | `text` block | `text` part |
//! | `delta.tool_calls` | `function_call` item, `function_call_arguments.delta` | `tool_use` block, `input_json_delta` | whole `functionCall` part (args an object) when the call is complete |
//! | finish `stop` | `response.completed` | `end_turn` | `STOP` |
//! | finish `length` | `response.incomplete`, reason `max_output_tokens` | `max_tokens` | `MAX_TOKENS` |
//! | finish `tool_calls` | `response.completed` | `tool_use` | `STOP` |
//! | finish `content_filter` | `response.incomplete`, reason `content_filter` | `refusal` | `SAFETY` |
//! | `usage` (last chunk) | `usage` of the terminal event | `message_delta.usage` | `usageMetadata` of the last chunk |
//! | error event | `error`, then `response.failed` | `event: error` | `{"error":{…}}` |
//!
//! Usage is never invented: when the upstream reported none, the Responses terminal event
//! has `usage: null`, Anthropic's `message_delta` counts `output_tokens: 0` (the field is
//! required) and Gemini's last chunk has no `usageMetadata`. Anthropic's `message_start`
//! comes before any usage is known (the standard stream reports it last): its
//! `input_tokens` is 0 and `message_delta` carries the real input and cache counts, which the
//! official SDKs take as the final usage. Only choice 0 is rendered (these APIs have one
//! candidate). Text completions carry no reasoning or tool calls: reasoning is dropped there.
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use http::{Request, Response};
//! use http_body_util::{BodyExt, Full};
//! use tower::{ServiceBuilder, ServiceExt};
//! use tower_llm_stream::render::{ClientApi, RenderLayer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let upstream = tower::service_fn(|_req: Request<()>| async {
//!     let chat = concat!(
//!         "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",",
//!         "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n",
//!         "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",",
//!         "\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],",
//!         "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1,\"total_tokens\":4}}\n\n",
//!         "data: [DONE]\n\n",
//!     );
//!     Ok::<_, std::convert::Infallible>(
//!         Response::builder().header("content-type", "text/event-stream").body(Full::new(Bytes::from(chat))).unwrap(),
//!     )
//! });
//! let service = ServiceBuilder::new().layer(RenderLayer::new()).service(upstream);
//! let mut request = Request::new(());
//! request.extensions_mut().insert(ClientApi::AnthropicMessages);
//! let body = service.oneshot(request).await.unwrap().into_body();
//! let text = String::from_utf8(body.collect().await.unwrap().to_bytes().to_vec()).unwrap();
//! assert!(text.starts_with("event: message_start\n"));
//! assert!(text.contains("\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}"));
//! assert!(text.contains("\"stop_reason\":\"end_turn\""));
//! assert!(text.contains("\"usage\":{\"input_tokens\":3,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":1}"));
//! assert!(text.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));
//! # }
//! ```

mod anthropic;
mod body;
mod chat;
mod completions;
mod future;
mod gemini;
mod layer;
mod responses;
mod service;
mod whole;

pub use self::body::RenderBody;
pub use self::chat::error_status;
pub use self::future::ResponseFuture;
pub use self::layer::RenderLayer;
pub use self::service::Render;
pub use self::whole::{error_body, whole_response};
pub use crate::provider::ClientApi;

/// A new identifier with `prefix`, unique in this process and unlikely to repeat across
/// processes (a counter mixed with the start time).
pub(crate) fn new_id(prefix: &str) -> String {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    static SEED: OnceLock<u64> = OnceLock::new();
    let seed = *SEED.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        nanos ^ (u64::from(std::process::id()) << 32)
    });
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    // A bijective mix, so two counters never give the same id.
    let mixed = (seed.wrapping_add(n)).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ seed.rotate_left(17);
    format!("{prefix}{mixed:016x}{n:x}")
}
