//! Writing canonical chat completion chunks: the machinery every translating dialect shares.

use bytes::Bytes;
use serde_json::Value;

/// Writes `chat.completion.chunk` frames with the same `id`, `created` and `model` on every
/// chunk. The constant prefix is rendered once per stream; each chunk is one buffer write.
#[derive(Debug, Clone)]
pub struct ChatChunkWriter {
    prefix: String,
}

/// A JSON string literal.
pub(crate) fn json_str(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned())
}

impl ChatChunkWriter {
    /// A writer for the stream `id` of `model`, created at `created` (Unix seconds).
    pub fn new(id: &str, created: u64, model: &str) -> Self {
        ChatChunkWriter {
            prefix: format!(
                "data: {{\"id\":{},\"object\":\"chat.completion.chunk\",\"created\":{created},\"model\":{},\"choices\":[",
                json_str(id),
                json_str(model)
            ),
        }
    }

    /// A content chunk for choice 0 whose delta is the JSON object `delta` (with braces).
    pub fn delta(&self, delta: &str) -> Bytes {
        self.delta_at(0, delta)
    }

    /// A content chunk for choice `index`.
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
    pub fn text_delta(&self, field: &str, text: &str) -> Bytes {
        self.delta(&format!("{{\"{field}\":{}}}", json_str(text)))
    }

    /// The last chunk for a single choice, then `[DONE]`.
    pub fn finish(&self, finish_reason: &str, usage: Option<&Value>) -> [Bytes; 2] {
        self.finish_all(&[(0, finish_reason)], usage)
    }

    /// The last chunk: every choice with an empty delta and its `finish_reason`, plus `usage`
    /// when known; then `[DONE]`.
    pub fn finish_all(&self, reasons: &[(u32, &str)], usage: Option<&Value>) -> [Bytes; 2] {
        let mut out = String::with_capacity(self.prefix.len() + 160);
        out.push_str(&self.prefix);
        for (n, (index, reason)) in reasons.iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            out.push_str(&format!(
                "{{\"index\":{index},\"delta\":{{}},\"finish_reason\":{}}}",
                json_str(reason)
            ));
        }
        out.push(']');
        if let Some(usage) = usage {
            out.push_str(",\"usage\":");
            out.push_str(&usage.to_string());
        }
        out.push_str("}\n\n");
        [Bytes::from(out), Bytes::from_static(b"data: [DONE]\n\n")]
    }
}

/// The canonical error event frame.
pub(crate) fn error_frame(error_type: &str, code: &str, message: &str) -> Bytes {
    let mut out = b"data: ".to_vec();
    out.extend_from_slice(&crate::error::error_json(error_type, code, message));
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// Unix seconds now: the `created` of streams whose upstream gives none.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
