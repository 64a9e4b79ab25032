//! Anthropic Messages streaming → canonical chat completion chunks.

use crate::dialect::Dialect;
use crate::error::StreamError;
use crate::sse::Block;
use crate::standard::Frames;
use crate::standard::json;
use crate::standard::write::unix_now;
use crate::standard::{ChatChunkWriter, error_frame, finish_reason_for_stop, json_string};
use serde::Deserialize;
use serde_json::{Value, json};
use std::borrow::Cow;

/// Translates Anthropic Messages streams (`/v1/messages`, `stream: true`) into OpenAI chat
/// completion chunks.
///
/// - `message_start` → the first chunk, `delta: {"role":"assistant","content":""}`; its id and
///   model are kept on every chunk.
/// - text blocks → `content`; thinking blocks → `reasoning_content`, their signature → `reasoning_signature` (one
///   delta, after the thinking text: the next turn must send it back);
///   `tool_use` blocks → `tool_calls` with `index` counted from 0 (Anthropic's content block
///   indexes renumbered), the id and name first, then `input_json_delta` fragments as
///   `function.arguments`.
/// - stop reasons: `end_turn` and `stop_sequence` → `stop`, `max_tokens` and
///   `model_context_window_exceeded` → `length`, `tool_use` → `tool_calls`, `refusal` →
///   `content_filter`.
/// - usage: input tokens from `message_start` (cache reads and writes included in
///   `prompt_tokens`, reads also as `prompt_tokens_details.cached_tokens`), output tokens from
///   the last `message_delta`; emitted in the last chunk before `[DONE]` at `message_stop`.
/// - `ping` dropped; an `error` event becomes the canonical error event and ends the stream.
/// - A stream that ends before `message_stop` was cut off ([`StreamError::Truncated`]).
///
/// ```
/// use bytes::Bytes;
/// use tower_llm_stream::dialect::Dialect;
/// use tower_llm_stream::provider::anthropic::AnthropicMessages;
/// use tower_llm_stream::standard::Frames;
/// use tower_llm_stream::sse::Decoder;
///
/// let upstream = concat!(
///     "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"claude-x\",\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n",
///     "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
///     "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n",
///     "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":2}}\n\n",
///     "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
/// );
/// let mut dialect = AnthropicMessages::new();
/// let mut frames = Frames::new();
/// let mut decoder = Decoder::new();
/// decoder.push(Bytes::from(upstream));
/// while let Some(block) = decoder.next_block() {
///     dialect.on_block(block.unwrap(), &mut frames).unwrap();
/// }
/// dialect.on_end(&mut frames).unwrap();
/// let out: Vec<_> = std::iter::from_fn(|| frames.pop()).collect();
/// assert_eq!(out.len(), 4); // role, "Hi", the last chunk, [DONE]
/// assert!(std::str::from_utf8(&out[1]).unwrap().contains("\"delta\":{\"content\":\"Hi\"}"));
/// assert!(std::str::from_utf8(&out[2]).unwrap().contains("\"finish_reason\":\"stop\""));
/// assert!(std::str::from_utf8(&out[2]).unwrap().contains("\"total_tokens\":7"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct AnthropicMessages {
    writer: Option<ChatChunkWriter>,
    /// For each Anthropic content block index: what it is.
    blocks: Vec<BlockKind>,
    tool_calls: u32,
    input_tokens: Option<u64>,
    cache_read: u64,
    cache_write: u64,
    output_tokens: Option<u64>,
    finish_reason: Option<&'static str>,
    ended: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockKind {
    Text,
    Thinking,
    Tool(u32),
    Other,
}

#[derive(Deserialize)]
struct Event<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    index: Option<usize>,
    #[serde(borrow)]
    delta: Option<Delta<'a>>,
    #[serde(borrow)]
    content_block: Option<ContentBlock<'a>>,
    #[serde(borrow)]
    message: Option<Message<'a>>,
    usage: Option<Usage>,
    error: Option<ErrorBody>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    thinking: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    signature: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    partial_json: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    stop_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ContentBlock<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    usage: Option<Usage>,
}

#[derive(Deserialize, Default)]
struct Usage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

impl AnthropicMessages {
    /// A translator for one stream.
    #[must_use]
    pub fn new() -> Self {
        AnthropicMessages::default()
    }

    fn usage(&mut self, usage: &Usage) {
        if let Some(n) = usage.input_tokens {
            self.input_tokens = Some(n);
        }
        if let Some(n) = usage.cache_read_input_tokens {
            self.cache_read = n;
        }
        if let Some(n) = usage.cache_creation_input_tokens {
            self.cache_write = n;
        }
        if let Some(n) = usage.output_tokens {
            self.output_tokens = Some(n);
        }
    }

    fn usage_json(&self) -> Option<Value> {
        if self.input_tokens.is_none() && self.output_tokens.is_none() {
            return None;
        }
        let prompt = self.input_tokens.unwrap_or(0) + self.cache_read + self.cache_write;
        let completion = self.output_tokens.unwrap_or(0);
        Some(json!({
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": if self.cache_write > 0 {
                json!({"cached_tokens": self.cache_read, "cache_creation_tokens": self.cache_write})
            } else {
                json!({"cached_tokens": self.cache_read})
            },
        }))
    }

    fn writer(&mut self) -> &ChatChunkWriter {
        self.writer
            .get_or_insert_with(|| ChatChunkWriter::new("msg_unknown", unix_now(), "unknown"))
    }
}

fn malformed(detail: impl Into<String>) -> StreamError {
    StreamError::MalformedEvent {
        detail: detail.into(),
    }
}

impl Dialect for AnthropicMessages {
    fn on_block(&mut self, block: Block, out: &mut Frames) -> Result<(), StreamError> {
        if self.ended {
            return Ok(());
        }
        let Some(event) = block.event() else {
            return Ok(()); // comments
        };
        let event: Event<'_> = json::parse(event.data_bytes())
            .map_err(|err| malformed(format!("Anthropic event is not valid JSON: {err}")))?;
        match &*event.kind {
            "message_start" => {
                let message = event
                    .message
                    .ok_or_else(|| malformed("message_start without a message"))?;
                if let Some(usage) = &message.usage {
                    self.usage(usage);
                }
                let writer = ChatChunkWriter::new(
                    message.id.as_deref().unwrap_or("msg_unknown"),
                    unix_now(),
                    message.model.as_deref().unwrap_or("unknown"),
                );
                out.push(writer.delta("{\"role\":\"assistant\",\"content\":\"\"}"));
                self.writer = Some(writer);
            }
            "content_block_start" => {
                let index = event.index.unwrap_or(self.blocks.len());
                let block = event
                    .content_block
                    .ok_or_else(|| malformed("content_block_start without a content_block"))?;
                let kind = match &*block.kind {
                    "text" => BlockKind::Text,
                    "thinking" | "redacted_thinking" => BlockKind::Thinking,
                    "tool_use" | "server_tool_use" => {
                        let n = self.tool_calls;
                        self.tool_calls += 1;
                        let delta = format!(
                            "{{\"tool_calls\":[{{\"index\":{n},\"id\":{},\"type\":\"function\",\"function\":{{\"name\":{},\"arguments\":\"\"}}}}]}}",
                            json_string(block.id.as_deref().unwrap_or_default()),
                            json_string(block.name.as_deref().unwrap_or_default()),
                        );
                        let frame = self.writer().delta(&delta);
                        out.push(frame);
                        BlockKind::Tool(n)
                    }
                    _ => BlockKind::Other,
                };
                if kind == BlockKind::Text {
                    if let Some(text) = block.text.as_deref().filter(|t| !t.is_empty()) {
                        let frame = self.writer().text_delta("content", text);
                        out.push(frame);
                    }
                }
                if self.blocks.len() <= index {
                    self.blocks.resize(index + 1, BlockKind::Other);
                }
                self.blocks[index] = kind;
            }
            "content_block_delta" => {
                let delta = event
                    .delta
                    .ok_or_else(|| malformed("content_block_delta without a delta"))?;
                let kind = event
                    .index
                    .and_then(|i| self.blocks.get(i).copied())
                    .unwrap_or(BlockKind::Text);
                let frame = match (delta.kind.as_deref(), kind) {
                    (Some("text_delta"), _) => delta
                        .text
                        .as_deref()
                        .map(|t| self.writer().text_delta("content", t)),
                    (Some("thinking_delta"), _) => delta
                        .thinking
                        .as_deref()
                        .map(|t| self.writer().text_delta("reasoning_content", t)),
                    (Some("input_json_delta"), BlockKind::Tool(n)) => delta
                        .partial_json
                        .as_deref()
                        .filter(|p| !p.is_empty())
                        .map(|p| {
                            let delta = format!(
                                "{{\"tool_calls\":[{{\"index\":{n},\"function\":{{\"arguments\":{}}}}}]}}",
                                json_string(p)
                            );
                            self.writer().delta(&delta)
                        }),
                    (Some("signature_delta"), _) => delta
                        .signature
                        .as_deref()
                        .filter(|s| !s.is_empty())
                        .map(|s| self.writer().text_delta("reasoning_signature", s)),
                    _ => None, // citations_delta, …
                };
                if let Some(frame) = frame {
                    out.push(frame);
                }
            }
            "message_delta" => {
                if let Some(reason) = event.delta.as_ref().and_then(|d| d.stop_reason.as_deref()) {
                    self.finish_reason = Some(finish_reason_for_stop(reason));
                }
                if let Some(usage) = &event.usage {
                    self.usage(usage);
                }
            }
            "message_stop" => {
                self.ended = true;
                let usage = self.usage_json();
                let reason = self.finish_reason.unwrap_or("stop");
                let [last, done] = self.writer().finish(reason, usage.as_ref());
                out.push(last);
                out.push(done);
            }
            "error" => {
                self.ended = true;
                let error = event.error.unwrap_or(ErrorBody {
                    kind: None,
                    message: None,
                });
                let kind = error.kind.unwrap_or_else(|| "api_error".to_owned());
                let message = error
                    .message
                    .unwrap_or_else(|| "the provider reported an error".to_owned());
                tracing::warn!(
                    error.code = crate::error::log_field(&kind),
                    message = crate::error::log_field(&message),
                    "Anthropic error event"
                );
                out.push(error_frame(&kind, &kind, &message));
            }
            _ => {} // ping, content_block_stop, future event types
        }
        Ok(())
    }

    fn on_unterminated(&mut self, block: Block, out: &mut Frames) -> Result<(), StreamError> {
        let is_stop = block
            .event()
            .is_some_and(|e| e.data_bytes().starts_with(b"{\"type\":\"message_stop\""));
        if is_stop {
            return self.on_block(block, out);
        }
        Err(crate::dialect::cut_mid_event())
    }

    fn on_end(&mut self, _out: &mut Frames) -> Result<(), StreamError> {
        if self.ended {
            Ok(())
        } else {
            Err(StreamError::Truncated {
                detail: "the Anthropic stream ended without message_stop",
            })
        }
    }
}
