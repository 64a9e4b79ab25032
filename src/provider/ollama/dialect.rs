//! Ollama's native NDJSON streams (`/api/chat`, `/api/generate`) → canonical chat chunks.

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

/// Translates Ollama's native streams into OpenAI chat completion chunks. The reframer reads
/// them as NDJSON (one JSON object per line).
///
/// - `message.content` (`/api/chat`) or `response` (`/api/generate`) → `content`;
///   `message.thinking` / `thinking` → `reasoning_content`; `message.tool_calls` (whole
///   calls) → `tool_calls` with ids `call_<n>` and the arguments object as a JSON string.
/// - `done: true` ends the stream: `done_reason` `length` → `length`, tool calls →
///   `tool_calls`, else `stop`; usage from `prompt_eval_count` and `eval_count` when given.
/// - An `{"error": …}` line becomes the canonical error event (Ollama keeps the 200 status).
/// - Ending without `done: true` is [`StreamError::Truncated`].
#[derive(Debug, Clone, Default)]
pub struct Ollama {
    writer: Option<ChatChunkWriter>,
    tool_calls: u32,
    ended: bool,
}

#[derive(Deserialize)]
struct Line<'a> {
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    response: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    thinking: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    message: Option<Message<'a>>,
    #[serde(default)]
    done: bool,
    #[serde(borrow, default)]
    done_reason: Option<Cow<'a, str>>,
    #[serde(default)]
    prompt_eval_count: Option<u64>,
    #[serde(default)]
    eval_count: Option<u64>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    thinking: Option<Cow<'a, str>>,
    #[serde(default)]
    tool_calls: Vec<Value>,
}

impl Ollama {
    /// A translator for one stream.
    #[must_use]
    pub fn new() -> Self {
        Ollama::default()
    }
}

impl Dialect for Ollama {
    fn framing(&self) -> crate::dialect::Framing {
        crate::dialect::Framing::Ndjson
    }

    fn on_block(&mut self, block: Block, out: &mut Frames) -> Result<(), StreamError> {
        let Some(event) = block.event() else {
            return Ok(());
        };
        if self.ended {
            return Ok(());
        }
        let line: Line<'_> =
            json::parse(event.data_bytes()).map_err(|err| StreamError::MalformedEvent {
                detail: format!("Ollama line is not valid JSON: {err}"),
            })?;
        if let Some(error) = line.error {
            self.ended = true;
            let message = error
                .as_str()
                .map_or_else(|| error.to_string(), str::to_owned);
            out.push(error_frame("upstream_error", "ollama_error", &message));
            return Ok(());
        }
        let writer = self.writer.get_or_insert_with(|| {
            let model = line.model.as_deref().unwrap_or("ollama");
            let writer = ChatChunkWriter::new(&format!("ollama-{}", unix_now()), unix_now(), model);
            out.push(writer.delta("{\"role\":\"assistant\",\"content\":\"\"}"));
            writer
        });
        let message = line.message.as_ref();
        let thinking = message
            .and_then(|m| m.thinking.as_deref())
            .or(line.thinking.as_deref());
        if let Some(text) = thinking.filter(|t| !t.is_empty()) {
            out.push(writer.text_delta("reasoning_content", text));
        }
        let content = message
            .and_then(|m| m.content.as_deref())
            .or(line.response.as_deref());
        if let Some(text) = content.filter(|t| !t.is_empty()) {
            out.push(writer.text_delta("content", text));
        }
        for call in message.map(|m| m.tool_calls.as_slice()).unwrap_or_default() {
            let n = self.tool_calls;
            self.tool_calls += 1;
            let function = &call["function"];
            let arguments = match &function["arguments"] {
                Value::String(s) => s.clone(),
                Value::Null => "{}".to_owned(),
                other => other.to_string(),
            };
            let id = call["id"]
                .as_str()
                .map_or_else(|| format!("call_{n}"), str::to_owned);
            let delta = format!(
                "{{\"tool_calls\":[{{\"index\":{n},\"id\":{},\"type\":\"function\",\"function\":{{\"name\":{},\"arguments\":{}}}}}]}}",
                json_string(&id),
                json_string(function["name"].as_str().unwrap_or_default()),
                json_string(&arguments)
            );
            out.push(writer.delta(&delta));
        }
        if line.done {
            self.ended = true;
            let reason = match line.done_reason.as_deref() {
                _ if self.tool_calls > 0 => "tool_calls",
                Some("length") => "length",
                _ => "stop",
            };
            let usage =
                (line.prompt_eval_count.is_some() || line.eval_count.is_some()).then(|| {
                    let (p, c) = (
                        line.prompt_eval_count.unwrap_or(0),
                        line.eval_count.unwrap_or(0),
                    );
                    json!({"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c})
                });
            for frame in writer.finish(reason, usage.as_ref()) {
                out.push(frame);
            }
        }
        Ok(())
    }

    fn on_unterminated(&mut self, block: Block, out: &mut Frames) -> Result<(), StreamError> {
        crate::dialect::translate_if_whole_json(self, block, out)
    }

    fn on_end(&mut self, _out: &mut Frames) -> Result<(), StreamError> {
        if self.ended {
            Ok(())
        } else {
            Err(StreamError::Truncated {
                detail: "the Ollama stream ended without done: true",
            })
        }
    }
}
