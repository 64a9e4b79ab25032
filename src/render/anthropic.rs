//! The standard chat stream as Anthropic Messages events.

use super::chat::{
    ApiRenderer, ChatCompletionChunk, Counts, ErrorInfo, push_json_str, typed_frame,
};
use crate::standard::Frames;
use crate::standard::write::push_int;
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Text,
    Thinking,
    /// A tool call, by its chat index.
    Tool(u32),
}

/// Renders one stream: `message_start`, content blocks opened and closed as the content
/// kind changes, `message_delta` with the stop reason and usage, `message_stop`.
#[derive(Debug)]
pub(super) struct AnthropicRenderer {
    started: bool,
    /// The open block and its index.
    open: Option<(Block, usize)>,
    next_index: usize,
    finish: Option<String>,
    usage: Option<Counts>,
    ended: bool,
}

/// Anthropic's stop reason for a standard finish reason.
pub(super) fn stop_reason(finish: Option<&str>) -> &'static str {
    match finish {
        Some("length") => "max_tokens",
        Some("tool_calls") => "tool_use",
        Some("content_filter") => "refusal",
        _ => "end_turn",
    }
}

/// Anthropic's error type for an HTTP status.
pub(super) fn error_type(status: u16) -> &'static str {
    match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        504 => "timeout_error",
        _ => "api_error",
    }
}

/// Anthropic's error object: `{"type":"error","error":{"type","message"}}`, for `status`.
pub(super) fn error_body(error: &ErrorInfo, status: u16) -> Value {
    json!({"type": "error", "error": {"type": error_type(status), "message": format!("{} ({})", error.message, error.code)}})
}

/// Anthropic usage from the standard counts: input without the cache, the cache apart.
pub(super) fn usage(c: Counts) -> Value {
    json!({
        "input_tokens": c.prompt.saturating_sub(c.cached + c.cache_creation),
        "cache_creation_input_tokens": c.cache_creation,
        "cache_read_input_tokens": c.cached,
        "output_tokens": c.completion,
    })
}

impl AnthropicRenderer {
    pub(super) fn new() -> Self {
        AnthropicRenderer {
            started: false,
            open: None,
            next_index: 0,
            finish: None,
            usage: None,
            ended: false,
        }
    }

    fn start(&mut self, model: &str, out: &mut Frames) {
        if self.started {
            return;
        }
        self.started = true;
        out.push(typed_frame(
            "message_start",
            &json!({"type": "message_start", "message": {
                "id": super::new_id("msg_"), "type": "message", "role": "assistant",
                "model": model, "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": 0, "output_tokens": 0}
            }}),
        ));
    }

    fn close(&mut self, out: &mut Frames) {
        if let Some((_, index)) = self.open.take() {
            out.push(typed_frame(
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": index}),
            ));
        }
    }

    /// Opens `block` unless it is open; returns its index.
    fn open(&mut self, block: Block, start: impl FnOnce() -> Value, out: &mut Frames) -> usize {
        match self.open {
            Some((open, index)) if open == block => index,
            _ => {
                self.close(out);
                let index = self.next_index;
                self.next_index += 1;
                out.push(typed_frame(
                    "content_block_start",
                    &json!({"type": "content_block_start", "index": index, "content_block": start()}),
                ));
                self.open = Some((block, index));
                index
            }
        }
    }

    /// A `content_block_delta` of `kind` (`text_delta`, …) with its one string `field`,
    /// written directly (the per-event path).
    fn delta(index: usize, kind: &str, field: &str, text: &str, out: &mut Frames) {
        let mut frame = Vec::with_capacity(112 + text.len());
        frame.extend_from_slice(
            b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":",
        );
        push_int(&mut frame, index);
        frame.extend_from_slice(b",\"delta\":{\"type\":\"");
        frame.extend_from_slice(kind.as_bytes());
        frame.extend_from_slice(b"\",\"");
        frame.extend_from_slice(field.as_bytes());
        frame.extend_from_slice(b"\":");
        push_json_str(&mut frame, text);
        frame.extend_from_slice(b"}}\n\n");
        out.push(bytes::Bytes::from(frame));
    }
}

impl ApiRenderer for AnthropicRenderer {
    fn chunk(&mut self, chunk: &ChatCompletionChunk<'_>, out: &mut Frames) {
        if self.ended {
            return;
        }
        self.start(&chunk.model, out);
        if let Some(usage) = &chunk.usage {
            self.usage = Some(Counts::read(usage));
        }
        for choice in chunk.choices.iter().filter(|c| c.index == 0) {
            if let Some(delta) = &choice.delta {
                let reasoning = delta
                    .reasoning_content
                    .as_deref()
                    .filter(|t| !t.is_empty())
                    .map(|t| ("thinking_delta", "thinking", t));
                let signature = delta
                    .reasoning_signature
                    .as_deref()
                    .filter(|s| !s.is_empty())
                    .map(|s| ("signature_delta", "signature", s));
                for (kind, field, text) in [reasoning, signature].into_iter().flatten() {
                    let index = self.open(
                        Block::Thinking,
                        || json!({"type": "thinking", "thinking": "", "signature": ""}),
                        out,
                    );
                    Self::delta(index, kind, field, text, out);
                }
                for text in [delta.refusal.as_deref(), delta.content.as_deref()]
                    .into_iter()
                    .flatten()
                    .filter(|t| !t.is_empty())
                {
                    let index = self.open(Block::Text, || json!({"type": "text", "text": ""}), out);
                    Self::delta(index, "text_delta", "text", text, out);
                }
                for call in &delta.tool_calls {
                    let function = call.function.as_ref();
                    let index = self.open(
                        Block::Tool(call.index),
                        || {
                            json!({"type": "tool_use",
                                "id": call.id.as_deref().map_or_else(|| super::new_id("toolu_"), str::to_owned),
                                "name": function.and_then(|f| f.name.as_deref()).unwrap_or_default(),
                                "input": {}})
                        },
                        out,
                    );
                    if let Some(arguments) = function
                        .and_then(|f| f.arguments.as_deref())
                        .filter(|a| !a.is_empty())
                    {
                        Self::delta(index, "input_json_delta", "partial_json", arguments, out);
                    }
                }
            }
            if let Some(finish) = &choice.finish_reason {
                self.finish = Some(finish.clone().into_owned());
            }
        }
    }

    fn done(&mut self, out: &mut Frames) {
        if self.ended {
            return;
        }
        self.start("", out);
        self.close(out);
        self.ended = true;
        let usage = match self.usage {
            Some(c) => usage(c),
            None => json!({"output_tokens": 0}),
        };
        out.push(typed_frame(
            "message_delta",
            &json!({"type": "message_delta",
                "delta": {"stop_reason": stop_reason(self.finish.as_deref()), "stop_sequence": null},
                "usage": usage}),
        ));
        out.push(typed_frame(
            "message_stop",
            &json!({"type": "message_stop"}),
        ));
    }

    fn error(&mut self, error: &ErrorInfo, out: &mut Frames) {
        if self.ended {
            return;
        }
        self.ended = true;
        out.push(typed_frame("error", &error_body(error, error.status())));
    }
}
