//! Cohere v2 chat streaming → canonical chat completion chunks.

use crate::dialect::Dialect;
use crate::error::StreamError;
use crate::sse::Block;
use crate::standard::Frames;
use crate::standard::json;
use crate::standard::write::unix_now;
use crate::standard::{ChatChunkWriter, error_frame, json_string};
use serde::Deserialize;
use serde_json::{Value, json};
use std::borrow::Cow;

/// Translates Cohere v2 streams (`/v2/chat`, `stream: true`) into OpenAI chat completion
/// chunks.
///
/// - `message-start` → the role chunk (its `id` kept on every chunk; Cohere does not stream
///   the model name, so give it with [`Cohere::for_model`]).
/// - `content-delta` text → `content`, thinking → `reasoning_content`; `tool-plan-delta`
///   (the plan the model writes before calling tools) → `reasoning_content`.
/// - `tool-call-start` / `tool-call-delta` → `tool_calls` (index counted from 0, id, name,
///   argument fragments).
/// - `message-end`: `COMPLETE` and `STOP_SEQUENCE` → `stop`, `MAX_TOKENS` → `length`,
///   `TOOL_CALL` → `tool_calls`; usage from `usage.tokens` (what the model processed; billed
///   units differ), `cached_tokens` → `prompt_tokens_details.cached_tokens`. The last chunk
///   and `[DONE]` follow; Cohere's own `[DONE]` is dropped. A `finish_reason` of `ERROR` or
///   `TIMEOUT` becomes an error event.
/// - Ending without `message-end` is [`StreamError::Truncated`].
#[derive(Debug, Clone, Default)]
pub struct Cohere {
    model: Option<String>,
    writer: Option<ChatChunkWriter>,
    tool_calls: u32,
    ended: bool,
}

#[derive(Deserialize)]
struct Event<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(default)]
    delta: Option<Value>,
}

fn str_at<'v>(value: &'v Value, path: &[&str]) -> Option<&'v str> {
    path.iter().try_fold(value, |v, key| v.get(key))?.as_str()
}

impl Cohere {
    /// A translator for one stream, with no model name known.
    #[must_use]
    pub fn new() -> Self {
        Cohere::default()
    }

    /// A translator that reports `model` in every chunk.
    pub fn for_model(model: impl Into<String>) -> Self {
        Cohere {
            model: Some(model.into()),
            ..Cohere::default()
        }
    }

    fn writer(&mut self, id: Option<&str>) -> &ChatChunkWriter {
        let model = self.model.as_deref().unwrap_or("cohere");
        self.writer.get_or_insert_with(|| {
            ChatChunkWriter::new(id.unwrap_or("cohere-stream"), unix_now(), model)
        })
    }
}

impl Dialect for Cohere {
    fn on_block(&mut self, block: Block, out: &mut Frames) -> Result<(), StreamError> {
        let Some(event) = block.event() else {
            return Ok(());
        };
        if self.ended || event.data() == "[DONE]" {
            return Ok(());
        }
        let event: Event<'_> =
            json::parse(event.data_bytes()).map_err(|err| StreamError::MalformedEvent {
                detail: format!("Cohere event is not valid JSON: {err}"),
            })?;
        let delta = event.delta.unwrap_or(Value::Null);
        let message = &delta["message"];
        match &*event.kind {
            "message-start" => {
                let frame = self
                    .writer(event.id.as_deref())
                    .delta("{\"role\":\"assistant\",\"content\":\"\"}");
                out.push(frame);
            }
            "content-delta" => {
                let content = &message["content"];
                let (field, text) = match (content["text"].as_str(), content["thinking"].as_str()) {
                    (Some(text), _) => ("content", text),
                    (None, Some(thinking)) => ("reasoning_content", thinking),
                    _ => return Ok(()),
                };
                if !text.is_empty() {
                    let frame = self.writer(None).text_delta(field, text);
                    out.push(frame);
                }
            }
            "tool-plan-delta" => {
                if let Some(plan) = message["tool_plan"].as_str().filter(|p| !p.is_empty()) {
                    let frame = self.writer(None).text_delta("reasoning_content", plan);
                    out.push(frame);
                }
            }
            "tool-call-start" => {
                let call = &message["tool_calls"];
                let n = self.tool_calls;
                self.tool_calls += 1;
                let delta = format!(
                    "{{\"tool_calls\":[{{\"index\":{n},\"id\":{},\"type\":\"function\",\"function\":{{\"name\":{},\"arguments\":{}}}}}]}}",
                    json_string(call["id"].as_str().unwrap_or_default()),
                    json_string(str_at(call, &["function", "name"]).unwrap_or_default()),
                    json_string(str_at(call, &["function", "arguments"]).unwrap_or_default()),
                );
                let frame = self.writer(None).delta(&delta);
                out.push(frame);
            }
            "tool-call-delta" => {
                let n = self.tool_calls.saturating_sub(1);
                if let Some(args) = str_at(&message["tool_calls"], &["function", "arguments"])
                    .filter(|a| !a.is_empty())
                {
                    let delta = format!(
                        "{{\"tool_calls\":[{{\"index\":{n},\"function\":{{\"arguments\":{}}}}}]}}",
                        json_string(args)
                    );
                    let frame = self.writer(None).delta(&delta);
                    out.push(frame);
                }
            }
            "message-end" => {
                self.ended = true;
                let reason = delta["finish_reason"].as_str().unwrap_or("COMPLETE");
                let finish = match reason {
                    "MAX_TOKENS" => "length",
                    "TOOL_CALL" => "tool_calls",
                    "ERROR" | "TIMEOUT" => {
                        let code = format!("cohere_{}", reason.to_ascii_lowercase());
                        let message = delta["error"]
                            .as_str()
                            .unwrap_or("the provider ended the stream with an error");
                        out.push(error_frame("upstream_error", &code, message));
                        return Ok(());
                    }
                    _ => "stop",
                };
                let usage = &delta["usage"];
                let tokens = &usage["tokens"];
                let usage = tokens.is_object().then(|| {
                    let prompt = tokens["input_tokens"].as_u64().unwrap_or(0);
                    let completion = tokens["output_tokens"].as_u64().unwrap_or(0);
                    let mut value = json!({
                        "prompt_tokens": prompt,
                        "completion_tokens": completion,
                        "total_tokens": prompt + completion,
                    });
                    if let Some(cached) = usage["cached_tokens"].as_u64() {
                        value["prompt_tokens_details"] = json!({"cached_tokens": cached});
                    }
                    value
                });
                let [last, done] = self.writer(None).finish(finish, usage.as_ref());
                out.push(last);
                out.push(done);
            }
            _ => {} // content-start/end, tool-call-end, citation-*, debug
        }
        Ok(())
    }

    fn on_unterminated(&mut self, block: Block, out: &mut Frames) -> Result<(), StreamError> {
        if self.ended {
            return Ok(()); // Cohere's own trailing [DONE]
        }
        let _ = (block, out);
        Err(crate::dialect::cut_mid_event())
    }

    fn on_end(&mut self, _out: &mut Frames) -> Result<(), StreamError> {
        if self.ended {
            Ok(())
        } else {
            Err(StreamError::Truncated {
                detail: "the Cohere stream ended without message-end",
            })
        }
    }
}
