//! The one writer of the standard stream: JSON strings, the error object, the error frames
//! (chat and Responses), `data:` frames of JSON values, `[DONE]`, and chat completion chunks.

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::Value;

/// The frame that ends a chat, completion or audio stream.
pub const DONE_FRAME: &[u8] = b"data: [DONE]\n\n";

/// A JSON string literal, quotes and escapes included.
///
/// ```
/// assert_eq!(tower_llm_stream::standard::json_string("a\"b"), r#""a\"b""#);
/// ```
#[must_use]
pub fn json_string(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

/// The standard error object: `{"error":{"type":…,"code":…,"message":…}}`, the body of an
/// error response and the data of an error event.
///
/// ```
/// use tower_llm_stream::standard::error_json;
///
/// let body = error_json("timeout_error", "upstream_timeout", "no response head within 30s");
/// assert_eq!(
///     &body[..],
///     br#"{"error":{"type":"timeout_error","code":"upstream_timeout","message":"no response head within 30s"}}"#
/// );
/// ```
#[must_use]
pub fn error_json(error_type: &str, code: &str, message: &str) -> Bytes {
    let mut out = String::with_capacity(48 + error_type.len() + code.len() + message.len());
    out.push_str("{\"error\":{\"type\":");
    out.push_str(&json_string(error_type));
    out.push_str(",\"code\":");
    out.push_str(&json_string(code));
    out.push_str(",\"message\":");
    out.push_str(&json_string(message));
    out.push_str("}}");
    Bytes::from(out)
}

/// The error event of a chat, completion or audio stream: `data: {"error":{…}}`.
///
/// ```
/// use tower_llm_stream::standard::error_frame;
///
/// assert_eq!(
///     &error_frame("timeout_error", "stream_idle_timeout", "no event for 30s")[..],
///     b"data: {\"error\":{\"type\":\"timeout_error\",\"code\":\"stream_idle_timeout\",\"message\":\"no event for 30s\"}}\n\n"
/// );
/// ```
#[must_use]
pub fn error_frame(error_type: &str, code: &str, message: &str) -> Bytes {
    let json = error_json(error_type, code, message);
    let mut out = BytesMut::with_capacity(json.len() + 8);
    out.put_slice(b"data: ");
    out.put_slice(&json);
    out.put_slice(b"\n\n");
    out.freeze()
}

/// The error event of a Responses API stream: `event: error`, `"type":"error"` and the
/// stream's next `sequence_number`, with the standard `error` object too.
///
/// ```
/// use tower_llm_stream::standard::responses_error_frame;
///
/// let frame = responses_error_frame(7, "upstream_error", "stream_truncated", "cut");
/// assert!(frame.starts_with(b"event: error\ndata: {\"type\":\"error\",\"sequence_number\":7,"));
/// ```
#[must_use]
pub fn responses_error_frame(
    sequence_number: u64,
    error_type: &str,
    code: &str,
    message: &str,
) -> Bytes {
    let (t, c, m) = (
        json_string(error_type),
        json_string(code),
        json_string(message),
    );
    Bytes::from(format!(
        "event: error\ndata: {{\"type\":\"error\",\"sequence_number\":{sequence_number},\"code\":{c},\"message\":{m},\"param\":null,\"error\":{{\"type\":{t},\"code\":{c},\"message\":{m}}}}}\n\n"
    ))
}

/// The standard finish reason for a stop reason of Anthropic's or Bedrock's (`end_turn`,
/// `max_tokens`, `tool_use`, `refusal`, `guardrail_intervened`, …).
///
/// ```
/// use tower_llm_stream::standard::finish_reason_for_stop;
///
/// assert_eq!(finish_reason_for_stop("max_tokens"), "length");
/// assert_eq!(finish_reason_for_stop("tool_use"), "tool_calls");
/// assert_eq!(finish_reason_for_stop("guardrail_intervened"), "content_filter");
/// assert_eq!(finish_reason_for_stop("end_turn"), "stop");
/// ```
#[must_use]
pub fn finish_reason_for_stop(reason: &str) -> &'static str {
    match reason {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "refusal" | "guardrail_intervened" | "content_filtered" => "content_filter",
        _ => "stop", // end_turn, stop_sequence, pause_turn
    }
}

/// `data: <compact JSON>\n\n`: an untyped event whose data is `value`.
///
/// ```
/// let frame = tower_llm_stream::standard::data_frame(&serde_json::json!({"a": 1}));
/// assert_eq!(&frame[..], b"data: {\"a\":1}\n\n");
/// ```
#[must_use]
pub fn data_frame(value: &Value) -> Bytes {
    let mut out = b"data: ".to_vec();
    serde_json::to_writer(&mut out, value).unwrap_or_default();
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// Writes `chat.completion.chunk` frames with the same `id`, `created` and `model` on every
/// chunk. The constant prefix is rendered once per stream; each chunk is one buffer write.
///
/// ```
/// use tower_llm_stream::standard::ChatChunkWriter;
///
/// let writer = ChatChunkWriter::new("c1", 1, "m");
/// assert_eq!(
///     &writer.text_delta("content", "Hi")[..],
///     &b"data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n"[..]
/// );
/// let [last, done] = writer.finish("stop", None);
/// assert!(last.ends_with(b"\"finish_reason\":\"stop\"}]}\n\n"));
/// assert_eq!(&done[..], b"data: [DONE]\n\n");
/// ```
#[derive(Debug, Clone)]
pub struct ChatChunkWriter {
    prefix: String,
}

impl ChatChunkWriter {
    /// A writer for the stream `id` of `model`, created at `created` (Unix seconds).
    #[must_use]
    pub fn new(id: &str, created: u64, model: &str) -> Self {
        ChatChunkWriter {
            prefix: format!(
                "data: {{\"id\":{},\"object\":\"chat.completion.chunk\",\"created\":{created},\"model\":{},\"choices\":[",
                json_string(id),
                json_string(model)
            ),
        }
    }

    /// A content chunk for choice 0 whose delta is the JSON object `delta` (with braces).
    #[must_use]
    pub fn delta(&self, delta: &str) -> Bytes {
        self.delta_at(0, delta)
    }

    /// A content chunk for choice `index`.
    #[must_use]
    pub fn delta_at(&self, index: u32, delta: &str) -> Bytes {
        let mut out = String::with_capacity(self.prefix.len() + delta.len() + 48);
        out.push_str(&self.prefix);
        out.push_str("{\"index\":");
        out.push_str(&index.to_string());
        out.push_str(",\"delta\":");
        out.push_str(delta);
        out.push_str(",\"finish_reason\":null}]}\n\n");
        Bytes::from(out)
    }

    /// `{"content": text}`-style delta with one string field, for choice 0.
    #[must_use]
    pub fn text_delta(&self, field: &str, text: &str) -> Bytes {
        self.delta(&format!("{{\"{field}\":{}}}", json_string(text)))
    }

    /// The last chunk for a single choice, then `[DONE]`.
    #[must_use]
    pub fn finish(&self, finish_reason: &str, usage: Option<&Value>) -> [Bytes; 2] {
        self.finish_all(&[(0, finish_reason)], usage)
    }

    /// The last chunk: every choice with an empty delta and its `finish_reason`, plus `usage`
    /// when known; then `[DONE]`.
    #[must_use]
    pub fn finish_all(&self, reasons: &[(u32, &str)], usage: Option<&Value>) -> [Bytes; 2] {
        let mut out = String::with_capacity(self.prefix.len() + 160);
        out.push_str(&self.prefix);
        for (n, (index, reason)) in reasons.iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            out.push_str(&format!(
                "{{\"index\":{index},\"delta\":{{}},\"finish_reason\":{}}}",
                json_string(reason)
            ));
        }
        out.push(']');
        if let Some(usage) = usage {
            out.push_str(",\"usage\":");
            out.push_str(&usage.to_string());
        }
        out.push_str("}\n\n");
        [Bytes::from(out), Bytes::from_static(DONE_FRAME)]
    }
}

/// Appends `n` in decimal, without `format!`'s machinery or a `String`: numbers written on
/// every event (the renderers' frames, a resumable stream's `id:` lines).
pub(crate) fn push_int(out: &mut Vec<u8>, n: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Unix seconds now: the `created` of streams whose upstream gives none.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
