//! Bedrock ConverseStream (AWS event-stream) → canonical chat completion chunks.

use crate::dialect::{Dialect, Framing};
use crate::error::StreamError;
use crate::sse::Block;
use crate::standard::Frames;
use crate::standard::json;
use crate::standard::write::unix_now;
use crate::standard::{ChatChunkWriter, error_frame, finish_reason_for_stop, json_string};
use serde_json::{Value, json};

/// Translates Bedrock's ConverseStream (`/model/{id}/converse-stream`, binary
/// `application/vnd.amazon.eventstream`) into OpenAI chat completion chunks.
///
/// - `messageStart` → the role chunk (Bedrock streams no model name: give it with
///   [`Bedrock::for_model`]).
/// - `contentBlockDelta`: `text` → `content`; `reasoningContent.text` → `reasoning_content`
///   (its `signature` → `reasoning_signature`); `toolUse.input` → `function.arguments` of the call opened by
///   `contentBlockStart`'s `toolUse` (`toolUseId`, `name`), indexes counted from 0.
/// - `messageStop.stopReason`: `end_turn`, `stop_sequence` → `stop`; `tool_use` →
///   `tool_calls`; `max_tokens`, `model_context_window_exceeded` → `length`;
///   `guardrail_intervened`, `content_filtered` → `content_filter`.
/// - `metadata.usage` (`inputTokens` + cache reads and writes, `outputTokens`,
///   `totalTokens`) → the last chunk's usage; the last chunk and `[DONE]` follow `metadata`
///   (or the end of the stream when Bedrock sends none).
/// - Exceptions (`throttlingException`, `modelStreamErrorException`, …) become the canonical
///   error event with the exception name as the code. Ending before `messageStop` is
///   [`StreamError::Truncated`]; a failed checksum is [`StreamError::MalformedEvent`].
#[derive(Debug, Clone, Default)]
pub struct Bedrock {
    model: Option<String>,
    writer: Option<ChatChunkWriter>,
    tool_calls: u32,
    /// For each content block index: the tool call it is, if any.
    tool_of_block: Vec<Option<u32>>,
    finish_reason: Option<&'static str>,
    ended: bool,
}

impl Bedrock {
    /// A translator for one stream, with no model name known.
    #[must_use]
    pub fn new() -> Self {
        Bedrock::default()
    }

    /// A translator that reports `model` in every chunk.
    pub fn for_model(model: impl Into<String>) -> Self {
        Bedrock {
            model: Some(model.into()),
            ..Bedrock::default()
        }
    }

    fn writer(&mut self) -> &ChatChunkWriter {
        let model = self.model.as_deref().unwrap_or("bedrock");
        self.writer.get_or_insert_with(|| {
            ChatChunkWriter::new(&format!("bedrock-{}", unix_now()), unix_now(), model)
        })
    }

    fn finish(&mut self, usage: Option<Value>, out: &mut Frames) {
        self.ended = true;
        let reason = self.finish_reason.unwrap_or("stop");
        for frame in self.writer().finish(reason, usage.as_ref()) {
            out.push(frame);
        }
    }
}

impl Dialect for Bedrock {
    fn framing(&self) -> Framing {
        Framing::AwsEventStream
    }

    fn on_block(&mut self, block: Block, out: &mut Frames) -> Result<(), StreamError> {
        let Some(event) = block.event() else {
            return Ok(());
        };
        if self.ended {
            return Ok(());
        }
        let kind = event.event_type().unwrap_or_default();
        let payload: Value =
            json::parse(event.data_bytes()).map_err(|err| StreamError::MalformedEvent {
                detail: format!("Bedrock {kind} payload is not valid JSON: {err}"),
            })?;
        if let Some(exception) = kind.strip_prefix("exception:") {
            self.ended = true;
            let message = payload["message"]
                .as_str()
                .or(payload["Message"].as_str())
                .unwrap_or("the provider reported an error");
            out.push(error_frame("upstream_error", exception, message));
            return Ok(());
        }
        let index = payload["contentBlockIndex"].as_u64().unwrap_or(0) as usize;
        match kind {
            "messageStart" => {
                let frame = self
                    .writer()
                    .delta("{\"role\":\"assistant\",\"content\":\"\"}");
                out.push(frame);
            }
            "contentBlockStart" => {
                let tool = &payload["start"]["toolUse"];
                if tool.is_object() {
                    let n = self.tool_calls;
                    self.tool_calls += 1;
                    if self.tool_of_block.len() <= index {
                        self.tool_of_block.resize(index + 1, None);
                    }
                    self.tool_of_block[index] = Some(n);
                    let delta = format!(
                        "{{\"tool_calls\":[{{\"index\":{n},\"id\":{},\"type\":\"function\",\"function\":{{\"name\":{},\"arguments\":\"\"}}}}]}}",
                        json_string(tool["toolUseId"].as_str().unwrap_or_default()),
                        json_string(tool["name"].as_str().unwrap_or_default()),
                    );
                    let frame = self.writer().delta(&delta);
                    out.push(frame);
                }
            }
            "contentBlockDelta" => {
                let delta = &payload["delta"];
                let frame = if let Some(text) = delta["text"].as_str() {
                    (!text.is_empty()).then(|| self.writer().text_delta("content", text))
                } else if let Some(text) = delta["reasoningContent"]["text"].as_str() {
                    (!text.is_empty()).then(|| self.writer().text_delta("reasoning_content", text))
                } else if let Some(signature) = delta["reasoningContent"]["signature"].as_str() {
                    (!signature.is_empty())
                        .then(|| self.writer().text_delta("reasoning_signature", signature))
                } else if let Some(input) = delta["toolUse"]["input"].as_str() {
                    let n = self.tool_of_block.get(index).copied().flatten();
                    match n {
                        Some(n) if !input.is_empty() => {
                            let delta = format!(
                                "{{\"tool_calls\":[{{\"index\":{n},\"function\":{{\"arguments\":{}}}}}]}}",
                                json_string(input)
                            );
                            Some(self.writer().delta(&delta))
                        }
                        _ => None,
                    }
                } else {
                    None
                };
                if let Some(frame) = frame {
                    out.push(frame);
                }
            }
            "messageStop" => {
                let reason = payload["stopReason"].as_str().unwrap_or("end_turn");
                self.finish_reason = Some(finish_reason_for_stop(reason));
            }
            "metadata" if self.finish_reason.is_some() => {
                let usage = &payload["usage"];
                let usage = usage.is_object().then(|| {
                    let cached = usage["cacheReadInputTokens"].as_u64().unwrap_or(0);
                    let written = usage["cacheWriteInputTokens"].as_u64().unwrap_or(0);
                    let prompt = usage["inputTokens"].as_u64().unwrap_or(0) + cached + written;
                    let completion = usage["outputTokens"].as_u64().unwrap_or(0);
                    let total = usage["totalTokens"].as_u64().unwrap_or(prompt + completion);
                    json!({
                        "prompt_tokens": prompt,
                        "completion_tokens": completion,
                        "total_tokens": total,
                        "prompt_tokens_details": {"cached_tokens": cached},
                    })
                });
                self.finish(usage, out);
            }
            _ => {} // contentBlockStop, metadata before messageStop
        }
        Ok(())
    }

    fn on_end(&mut self, out: &mut Frames) -> Result<(), StreamError> {
        if self.ended {
            return Ok(());
        }
        if self.finish_reason.is_some() {
            self.finish(None, out); // no metadata event: no usage, none invented
            return Ok(());
        }
        Err(StreamError::Truncated {
            detail: "the Bedrock stream ended without messageStop",
        })
    }
}
