//! What the renderers read: one standard frame as a chat chunk, `[DONE]`, an error event, or
//! something else, and the error it carries in a form every API's error shape is written from.

use crate::standard::Frames;
use crate::standard::events::Usage;
use crate::standard::frame::{is_done, is_error_data, untyped_data};
use crate::standard::json;
use serde::Deserialize;
use serde_json::Value;
use std::borrow::Cow;

/// A chat or completion chunk, as the renderers read it: the fields they use, borrowed; the
/// rest skipped unread (the typed events of [`crate::standard::events`] keep every field,
/// which costs a buffered pass per object).
#[derive(Debug, Deserialize)]
pub(super) struct ChatCompletionChunk<'a> {
    #[serde(borrow, default)]
    pub id: Cow<'a, str>,
    #[serde(borrow, default)]
    pub object: Cow<'a, str>,
    #[serde(default)]
    pub created: u64,
    #[serde(borrow, default)]
    pub model: Cow<'a, str>,
    #[serde(borrow, default)]
    pub choices: Vec<Choice<'a>>,
    #[serde(default)]
    pub usage: Option<Usage>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Choice<'a> {
    #[serde(default)]
    pub index: u32,
    #[serde(borrow, default)]
    pub delta: Option<Delta<'a>>,
    #[serde(borrow, default)]
    pub text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub finish_reason: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct Delta<'a> {
    #[serde(borrow, default)]
    pub content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub refusal: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub reasoning_content: Option<Cow<'a, str>>,
    /// Anthropic's thinking signature.
    #[serde(borrow, default)]
    pub reasoning_signature: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub tool_calls: Vec<ToolCallDelta<'a>>,
}

#[derive(Debug, Deserialize)]
pub(super) struct ToolCallDelta<'a> {
    #[serde(default)]
    pub index: u32,
    #[serde(borrow, default)]
    pub id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub function: Option<FunctionDelta<'a>>,
    /// Gemini's `thoughtSignature` rides in `extra_content.google.thought_signature`.
    #[serde(default)]
    pub extra_content: Option<Value>,
}

#[derive(Debug, Deserialize)]
pub(super) struct FunctionDelta<'a> {
    #[serde(borrow, default)]
    pub name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub arguments: Option<Cow<'a, str>>,
}

/// One standard frame, read.
pub(super) enum ChatEvent<'a> {
    Chunk(ChatCompletionChunk<'a>),
    Done,
    Error(ErrorInfo),
    /// A comment, a typed event, or JSON that is not a chat chunk.
    Other,
}

impl<'a> ChatEvent<'a> {
    pub(super) fn read(frame: &'a [u8]) -> Self {
        if is_done(frame) {
            return ChatEvent::Done;
        }
        let Some(data) = untyped_data(frame) else {
            return ChatEvent::Other;
        };
        if is_error_data(data) {
            return match serde_json::from_slice::<Value>(data) {
                Ok(value) => ChatEvent::Error(ErrorInfo::from_body(&value)),
                Err(_) => ChatEvent::Other,
            };
        }
        match json::parse::<ChatCompletionChunk<'a>>(data) {
            Ok(chunk) if is_chunk_object(&chunk.object) => ChatEvent::Chunk(chunk),
            Ok(_) => ChatEvent::Other,
            Err(e) if looks_like_chunk(data) => ChatEvent::Error(ErrorInfo::new(
                "upstream_error",
                "malformed_event",
                format!("a chat chunk could not be read: {e}"),
            )),
            Err(_) => ChatEvent::Other,
        }
    }
}

fn is_chunk_object(object: &str) -> bool {
    object == "chat.completion.chunk" || object == "text_completion"
}

fn looks_like_chunk(data: &[u8]) -> bool {
    memchr::memmem::find(data, b"\"chat.completion.chunk\"").is_some()
        || memchr::memmem::find(data, b"\"text_completion\"").is_some()
}

/// An error, as every API's error shape needs it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ErrorInfo {
    /// The standard error type (`timeout_error`, `upstream_error`, `rate_limit_error`, …).
    pub kind: String,
    /// The stable code (`stream_idle_timeout`, `stream_truncated`, a provider's own).
    pub code: String,
    pub message: String,
}

impl ErrorInfo {
    pub(super) fn new(kind: &str, code: &str, message: String) -> Self {
        ErrorInfo {
            kind: kind.to_owned(),
            code: code.to_owned(),
            message,
        }
    }

    /// From a standard error body or event data (`{"error":{"type","code","message"}}`),
    /// leniently: an upstream's own error object may lack a field or hold a number.
    pub(super) fn from_body(body: &Value) -> Self {
        let error = body.get("error").unwrap_or(body);
        let text = |key: &str| match error.get(key) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Null) | None => None,
            Some(other) => Some(other.to_string()),
        };
        let message = match error {
            Value::String(s) => s.clone(),
            _ => text("message").unwrap_or_else(|| error.to_string()),
        };
        ErrorInfo {
            kind: text("type").unwrap_or_else(|| "upstream_error".to_owned()),
            code: text("code").unwrap_or_else(|| "upstream_error".to_owned()),
            message,
        }
    }

    /// The HTTP status the error stands for: what Gemini's error `code` carries, and what a
    /// client that wanted one object gets.
    pub(super) fn status(&self) -> u16 {
        error_status(&self.kind, &self.code).as_u16()
    }
}

/// The HTTP status a standard error (its `type` and `code`) stands for: the status of the
/// whole answer for a client that wanted one object, and the `code` of a Gemini error.
///
/// ```
/// use http::StatusCode;
/// use tower_llm_stream::render::error_status;
///
/// assert_eq!(error_status("timeout_error", "stream_deadline"), StatusCode::GATEWAY_TIMEOUT);
/// assert_eq!(error_status("server_error", "server_shutting_down"), StatusCode::SERVICE_UNAVAILABLE);
/// assert_eq!(error_status("rate_limit_error", "rate_limited"), StatusCode::TOO_MANY_REQUESTS);
/// assert_eq!(error_status("upstream_error", "malformed_event"), StatusCode::BAD_GATEWAY);
/// ```
#[must_use]
pub fn error_status(error_type: &str, code: &str) -> http::StatusCode {
    use http::StatusCode;
    match code {
        "stream_idle_timeout" | "stream_deadline" | "upstream_timeout" => {
            return StatusCode::GATEWAY_TIMEOUT;
        }
        "invalid_request_timeout" => return StatusCode::BAD_REQUEST,
        "upstream_unavailable" => return StatusCode::BAD_GATEWAY,
        "server_shutting_down" => return StatusCode::SERVICE_UNAVAILABLE,
        _ => {}
    }
    match error_type {
        "invalid_request_error" => StatusCode::BAD_REQUEST,
        "authentication_error" => StatusCode::UNAUTHORIZED,
        "permission_error" => StatusCode::FORBIDDEN,
        "not_found_error" => StatusCode::NOT_FOUND,
        "rate_limit_error" => StatusCode::TOO_MANY_REQUESTS,
        "overloaded_error" => StatusCode::SERVICE_UNAVAILABLE,
        "timeout_error" => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::BAD_GATEWAY,
    }
}

/// The one interface of the four renderers: chunks in order, then `[DONE]` or an error.
pub(super) trait ApiRenderer {
    /// A chat chunk (only choice 0 is rendered).
    fn chunk(&mut self, chunk: &ChatCompletionChunk<'_>, out: &mut Frames);
    /// `[DONE]`: the closing events.
    fn done(&mut self, out: &mut Frames);
    /// An error event: the API's error, and whatever must follow it.
    fn error(&mut self, error: &ErrorInfo, out: &mut Frames);
}

/// Appends `text` as a JSON string literal (quotes and escapes).
pub(super) fn push_json_str(out: &mut Vec<u8>, text: &str) {
    serde_json::to_writer(out, text).unwrap_or_default();
}

/// `event: NAME\ndata: JSON\n\n`.
pub(super) fn typed_frame(name: &str, data: &Value) -> bytes::Bytes {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    serde_json::to_writer(&mut out, data).unwrap_or_default();
    out.extend_from_slice(b"\n\n");
    bytes::Bytes::from(out)
}

/// The usage counts of a standard `usage` object, with the details every API names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Counts {
    /// Input tokens, cache reads and writes included.
    pub prompt: u64,
    pub completion: u64,
    pub total: u64,
    /// Cache reads (`prompt_tokens_details.cached_tokens`).
    pub cached: u64,
    /// Cache writes (`prompt_tokens_details.cache_creation_tokens`, Anthropic's).
    pub cache_creation: u64,
    /// Reasoning (`completion_tokens_details.reasoning_tokens`), part of `completion`.
    pub reasoning: u64,
}

impl Counts {
    pub(super) fn read(usage: &crate::standard::events::Usage) -> Self {
        let detail = |group: &str, key: &str| {
            usage
                .extra
                .get(group)
                .and_then(|g| g.get(key))
                .and_then(Value::as_u64)
                .unwrap_or(0)
        };
        Counts {
            prompt: usage.prompt_tokens,
            completion: usage.completion_tokens,
            total: usage.total_tokens,
            cached: detail("prompt_tokens_details", "cached_tokens"),
            cache_creation: detail("prompt_tokens_details", "cache_creation_tokens"),
            reasoning: detail("completion_tokens_details", "reasoning_tokens"),
        }
    }

    /// From a whole `chat.completion`'s `usage` value.
    pub(super) fn from_value(usage: &Value) -> Option<Self> {
        serde_json::from_value::<crate::standard::events::Usage>(usage.clone())
            .ok()
            .map(|u| Counts::read(&u))
    }
}
