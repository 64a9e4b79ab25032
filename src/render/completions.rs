//! The standard chat stream as OpenAI text completion chunks.

use super::chat::{ApiRenderer, ErrorInfo};
use crate::standard::events::ChatCompletionChunk;
use crate::standard::{DONE_FRAME, Frames, data_frame, error_frame};
use bytes::Bytes;
use serde_json::{Value, json};

/// Renders one stream: each chat chunk's text as a `text_completion` chunk with the same id,
/// the last chunk's finish reasons and usage as they are, then `[DONE]`.
#[derive(Debug, Default)]
pub(super) struct CompletionsRenderer {
    ended: bool,
}

impl CompletionsRenderer {
    pub(super) fn new() -> Self {
        CompletionsRenderer::default()
    }
}

impl ApiRenderer for CompletionsRenderer {
    fn chunk(&mut self, chunk: &ChatCompletionChunk<'_>, out: &mut Frames) {
        if self.ended {
            return;
        }
        let choices: Vec<Value> = chunk
            .choices
            .iter()
            .filter_map(|choice| {
                let text = choice
                    .delta
                    .as_ref()
                    .and_then(|d| d.content.as_deref().or(d.refusal.as_deref()))
                    .or(choice.text.as_deref());
                if text.is_none_or(str::is_empty) && choice.finish_reason.is_none() {
                    return None;
                }
                Some(
                    json!({"index": choice.index, "text": text.unwrap_or_default(),
                    "logprobs": null, "finish_reason": choice.finish_reason}),
                )
            })
            .collect();
        if choices.is_empty() && chunk.usage.is_none() {
            return; // a role-only or reasoning-only chunk: nothing to say in this API
        }
        let mut completion = json!({"id": chunk.id, "object": "text_completion",
            "created": chunk.created, "model": chunk.model, "choices": choices});
        if let Some(usage) = &chunk.usage {
            completion["usage"] = serde_json::to_value(usage).unwrap_or_default();
        }
        out.push(data_frame(&completion));
    }

    fn done(&mut self, out: &mut Frames) {
        if !self.ended {
            self.ended = true;
            out.push(Bytes::from_static(DONE_FRAME));
        }
    }

    fn error(&mut self, error: &ErrorInfo, out: &mut Frames) {
        if !self.ended {
            self.ended = true;
            out.push(error_frame(&error.kind, &error.code, &error.message));
        }
    }
}
