//! The standard chat stream as Gemini `streamGenerateContent?alt=sse` chunks.

use super::chat::{ApiRenderer, ChatCompletionChunk, Counts, ErrorInfo, push_json_str};
use crate::standard::{Frames, data_frame};
use serde_json::{Map, Value, json};

/// A tool call being assembled: Gemini sends each call whole.
#[derive(Debug)]
struct PendingCall {
    index: u32,
    id: Option<String>,
    name: String,
    arguments: String,
    /// Gemini's `thoughtSignature` of the call, carried in the standard stream as
    /// `extra_content.google.thought_signature` (as Google's OpenAI-compatible API does).
    signature: Option<String>,
}

/// Renders one stream: a chunk per chat chunk with content, tool calls when complete, the
/// finish reason and usage in the last chunk.
#[derive(Debug)]
pub(super) struct GeminiRenderer {
    id: String,
    model: String,
    /// What follows the parts of every chunk but the last: the candidate's role and index,
    /// the model and the response id, written once.
    suffix: Vec<u8>,
    calls: Vec<PendingCall>,
    finish: Option<String>,
    usage: Option<Counts>,
    ended: bool,
}

/// Gemini's finish reason for a standard one.
pub(super) fn finish_reason(finish: Option<&str>) -> &'static str {
    match finish {
        Some("length") => "MAX_TOKENS",
        Some("content_filter") => "SAFETY",
        _ => "STOP",
    }
}

/// Google's status name for an HTTP status.
fn status_name(status: u16) -> &'static str {
    match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        413 => "INVALID_ARGUMENT",
        429 => "RESOURCE_EXHAUSTED",
        501 => "UNIMPLEMENTED",
        502 | 503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "INTERNAL",
    }
}

/// Gemini's error object: `{"error":{"code","message","status"}}`, for `status`.
pub(super) fn error_body(error: &ErrorInfo, status: u16) -> Value {
    json!({"error": {"code": status, "message": format!("{} ({})", error.message, error.code), "status": status_name(status)}})
}

/// `usageMetadata` from the standard counts.
pub(super) fn usage_metadata(c: Counts) -> Value {
    let mut usage = Map::new();
    usage.insert("promptTokenCount".into(), c.prompt.into());
    usage.insert(
        "candidatesTokenCount".into(),
        c.completion.saturating_sub(c.reasoning).into(),
    );
    if c.reasoning > 0 {
        usage.insert("thoughtsTokenCount".into(), c.reasoning.into());
    }
    if c.cached > 0 {
        usage.insert("cachedContentTokenCount".into(), c.cached.into());
    }
    usage.insert("totalTokenCount".into(), c.total.into());
    Value::Object(usage)
}

/// A whole call as a `functionCall` part; arguments that are not a JSON object are an error.
fn call_part(call: &PendingCall) -> Result<Value, ErrorInfo> {
    let args = if call.arguments.trim().is_empty() {
        Value::Object(Map::new())
    } else {
        serde_json::from_str::<Value>(&call.arguments)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| {
                ErrorInfo::new(
                    "upstream_error",
                    "malformed_event",
                    format!(
                        "the arguments of tool call {:?} are not a JSON object",
                        call.name
                    ),
                )
            })?
    };
    let mut function_call = json!({"name": call.name, "args": args});
    if let Some(id) = &call.id {
        function_call["id"] = id.clone().into();
    }
    let mut part = json!({"functionCall": function_call});
    if let Some(signature) = &call.signature {
        part["thoughtSignature"] = signature.clone().into();
    }
    Ok(part)
}

impl GeminiRenderer {
    pub(super) fn new() -> Self {
        GeminiRenderer {
            id: String::new(),
            model: String::new(),
            suffix: Vec::new(),
            calls: Vec::new(),
            finish: None,
            usage: None,
            ended: false,
        }
    }

    fn candidate_chunk(&self, parts: Vec<Value>, last: bool) -> Value {
        let mut candidate = Map::new();
        candidate.insert("content".into(), json!({"parts": parts, "role": "model"}));
        if last {
            candidate.insert(
                "finishReason".into(),
                finish_reason(self.finish.as_deref()).into(),
            );
        }
        candidate.insert("index".into(), 0.into());
        let mut chunk = Map::new();
        chunk.insert("candidates".into(), json!([candidate]));
        if last {
            if let Some(usage) = self.usage {
                chunk.insert("usageMetadata".into(), usage_metadata(usage));
            }
        }
        chunk.insert("modelVersion".into(), self.model.clone().into());
        chunk.insert("responseId".into(), self.id.clone().into());
        Value::Object(chunk)
    }

    /// The calls complete before `index` (all when `None`), as parts.
    fn take_calls(&mut self, before: Option<u32>) -> Result<Vec<Value>, ErrorInfo> {
        let split = self
            .calls
            .iter()
            .position(|c| before.is_some_and(|b| c.index >= b))
            .unwrap_or(self.calls.len());
        let done: Vec<PendingCall> = self.calls.drain(..split).collect();
        done.iter().map(call_part).collect()
    }
}

impl ApiRenderer for GeminiRenderer {
    fn chunk(&mut self, chunk: &ChatCompletionChunk<'_>, out: &mut Frames) {
        if self.ended {
            return;
        }
        if self.id.is_empty() {
            self.id = super::new_id("");
            self.model = chunk.model.clone().into_owned();
            self.suffix
                .extend_from_slice(b"],\"role\":\"model\"},\"index\":0}],\"modelVersion\":");
            push_json_str(&mut self.suffix, &self.model);
            self.suffix.extend_from_slice(b",\"responseId\":");
            push_json_str(&mut self.suffix, &self.id);
            self.suffix.extend_from_slice(b"}\n\n");
        }
        if let Some(usage) = &chunk.usage {
            self.usage = Some(Counts::read(usage));
        }
        // The parts, written directly (the per-event path).
        let mut parts: Vec<u8> = Vec::new();
        let add_text = |parts: &mut Vec<u8>, text: &str, thought: bool| {
            if !parts.is_empty() {
                parts.push(b',');
            }
            parts.extend_from_slice(b"{\"text\":");
            push_json_str(parts, text);
            parts.extend_from_slice(if thought {
                b",\"thought\":true}" as &[u8]
            } else {
                b"}"
            });
        };
        for choice in chunk.choices.iter().filter(|c| c.index == 0) {
            if let Some(delta) = &choice.delta {
                if let Some(text) = delta.reasoning_content.as_deref().filter(|t| !t.is_empty()) {
                    add_text(&mut parts, text, true);
                }
                for text in [delta.refusal.as_deref(), delta.content.as_deref()]
                    .into_iter()
                    .flatten()
                    .filter(|t| !t.is_empty())
                {
                    add_text(&mut parts, text, false);
                }
                for call in &delta.tool_calls {
                    let function = call.function.as_ref();
                    let signature = delta_signature(call);
                    if self.calls.last().is_none_or(|c| c.index != call.index) {
                        // A new call: the ones before it are complete.
                        match self.take_calls(Some(call.index)) {
                            Ok(done) => {
                                for part in done {
                                    if !parts.is_empty() {
                                        parts.push(b',');
                                    }
                                    serde_json::to_writer(&mut parts, &part).unwrap_or_default();
                                }
                            }
                            Err(e) => return self.error(&e, out),
                        }
                        self.calls.push(PendingCall {
                            index: call.index,
                            id: call.id.as_deref().map(str::to_owned),
                            name: String::new(),
                            arguments: String::new(),
                            signature: None,
                        });
                    }
                    let pending = self.calls.last_mut().expect("pushed above");
                    if let Some(name) = function.and_then(|f| f.name.as_deref()) {
                        pending.name.push_str(name);
                    }
                    if let Some(arguments) = function.and_then(|f| f.arguments.as_deref()) {
                        pending.arguments.push_str(arguments);
                    }
                    if signature.is_some() {
                        pending.signature = signature;
                    }
                }
            }
            if let Some(finish) = &choice.finish_reason {
                self.finish = Some(finish.clone().into_owned());
            }
        }
        if !parts.is_empty() {
            let mut frame = Vec::with_capacity(96 + parts.len() + self.suffix.len());
            frame.extend_from_slice(b"data: {\"candidates\":[{\"content\":{\"parts\":[");
            frame.extend_from_slice(&parts);
            frame.extend_from_slice(&self.suffix);
            out.push(bytes::Bytes::from(frame));
        }
    }

    fn done(&mut self, out: &mut Frames) {
        if self.ended {
            return;
        }
        let parts = match self.take_calls(None) {
            Ok(parts) => parts,
            Err(e) => return self.error(&e, out),
        };
        self.ended = true;
        out.push(data_frame(&self.candidate_chunk(parts, true)));
    }

    fn error(&mut self, error: &ErrorInfo, out: &mut Frames) {
        if self.ended {
            return;
        }
        self.ended = true;
        out.push(data_frame(&error_body(error, error.status())));
    }
}

/// The `thoughtSignature` a tool call fragment carries, if any.
fn delta_signature(call: &super::chat::ToolCallDelta<'_>) -> Option<String> {
    call.extra_content
        .as_ref()
        .and_then(|e| e.get("google"))
        .and_then(|g| g.get("thought_signature"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}
