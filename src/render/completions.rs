//! The standard chat stream as OpenAI text completion chunks.

use super::chat::{ApiRenderer, ChatCompletionChunk, ErrorInfo, push_json_str};
use crate::standard::write::push_int;
use crate::standard::{DONE_FRAME, Frames, error_frame};
use bytes::Bytes;

/// Renders one stream: each chat chunk's text as a `text_completion` chunk with the same id,
/// the last chunk's finish reasons and usage as they are, then `[DONE]`.
#[derive(Debug, Default)]
pub(super) struct CompletionsRenderer {
    /// `data: {"id":…,"object":"text_completion","created":…,"model":…,"choices":[`, from the
    /// first chunk: every chunk repeats it.
    prefix: Vec<u8>,
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
        if self.prefix.is_empty() {
            self.prefix.extend_from_slice(b"data: {\"id\":");
            push_json_str(&mut self.prefix, &chunk.id);
            self.prefix
                .extend_from_slice(b",\"object\":\"text_completion\",\"created\":");
            push_int(&mut self.prefix, chunk.created);
            self.prefix.extend_from_slice(b",\"model\":");
            push_json_str(&mut self.prefix, &chunk.model);
            self.prefix.extend_from_slice(b",\"choices\":[");
        }
        let mut frame = self.prefix.clone();
        let mut choices = 0;
        for choice in &chunk.choices {
            let text = choice
                .delta
                .as_ref()
                .and_then(|d| d.content.as_deref().or(d.refusal.as_deref()))
                .or(choice.text.as_deref());
            if text.is_none_or(str::is_empty) && choice.finish_reason.is_none() {
                continue;
            }
            if choices > 0 {
                frame.push(b',');
            }
            choices += 1;
            frame.extend_from_slice(b"{\"index\":");
            push_int(&mut frame, choice.index);
            frame.extend_from_slice(b",\"text\":");
            push_json_str(&mut frame, text.unwrap_or_default());
            frame.extend_from_slice(b",\"logprobs\":null,\"finish_reason\":");
            match &choice.finish_reason {
                Some(reason) => push_json_str(&mut frame, reason),
                None => frame.extend_from_slice(b"null"),
            }
            frame.push(b'}');
        }
        if choices == 0 && chunk.usage.is_none() {
            return; // a role-only or reasoning-only chunk: nothing to say in this API
        }
        frame.push(b']');
        if let Some(usage) = &chunk.usage {
            frame.extend_from_slice(b",\"usage\":");
            serde_json::to_writer(&mut frame, usage).unwrap_or_default();
        }
        frame.extend_from_slice(b"}\n\n");
        out.push(Bytes::from(frame));
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
