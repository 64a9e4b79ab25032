//! OpenAI-compatible upstreams with their quirks → canonical chat completion chunks.

use crate::dialect::Dialect;
use crate::error::StreamError;
use crate::sse::Block;
use crate::standard::Frames;
use crate::standard::data_frame;
use crate::standard::error_frame;
use crate::standard::frame::is_terminator;
use crate::standard::probe::Needles;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::OnceLock;

/// For upstreams that speak OpenAI's chat and completions dialect, each with its quirks:
/// OpenAI, Azure, vLLM, llama.cpp, Ollama's `/v1`, Groq, Mistral, DeepSeek, OpenRouter.
///
/// On top of [`Passthrough`](crate::dialect::Passthrough) (same terminator rules):
/// - `delta.reasoning` (Groq, OpenRouter) → `reasoning_content`, DeepSeek's name for it;
/// - `delta.content` as an array of parts (Mistral's Magistral: `thinking` parts and `text`
///   parts) → `reasoning_content` and a `content` string;
/// - tool calls without `index` (Mistral) get one: a call with an `id` opens the next index,
///   a fragment without one continues the last;
/// - transcription deltas (`transcript.text.delta`) carry `text` beside `delta`;
/// - a speech or transcription stream that ends after its `speech.audio.done` /
///   `transcript.text.done` event without `[DONE]` is complete (`[DONE]` is added);
/// - an error inside a chunk (OpenRouter's top-level `error`) or an `event: error` (Groq)
///   becomes the canonical error event `data: {"error":{"type","code","message"}}`, and the
///   stream ends there.
///
/// Chunks that need none of this are not parsed: one probe for their keys decides.
/// Usage and finish reasons are [`UsageLastChunkLayer`](crate::usage::UsageLastChunkLayer)'s
/// business.
#[derive(Debug, Clone, Default)]
pub struct OpenAiCompatible {
    terminated: bool,
    /// An audio stream's last event (`speech.audio.done`, `transcript.text.done`) was seen:
    /// an end without `[DONE]` after it lost nothing.
    audio_done: bool,
    /// Per choice: how many tool calls have been opened.
    tool_calls: HashMap<u64, u64>,
}

/// The keys of the chunks this translator rewrites; a chunk with none of them passes as it is.
fn needs_fixing() -> &'static Needles {
    static NEEDLES: OnceLock<Needles> = OnceLock::new();
    NEEDLES.get_or_init(|| {
        Needles::new(&[
            b"\"reasoning\":",
            b"\"content\":[",
            b"\"tool_calls\":",
            b"\"error\":",
            b"\"transcript.text.delta\"",
            b"speech.audio.done\"",
            b"transcript.text.done\"",
        ])
    })
}

impl OpenAiCompatible {
    /// A translator for one stream.
    #[must_use]
    pub fn new() -> Self {
        OpenAiCompatible::default()
    }

    /// Rewrites one chunk's choices; returns whether anything changed.
    fn fix_choices(&mut self, chunk: &mut Map<String, Value>) -> bool {
        let mut changed = false;
        let Some(Value::Array(choices)) = chunk.get_mut("choices") else {
            return false;
        };
        for choice in choices.iter_mut() {
            let index = choice.get("index").and_then(Value::as_u64).unwrap_or(0);
            let Some(Value::Object(delta)) = choice.get_mut("delta") else {
                continue;
            };
            // reasoning → reasoning_content
            if let Some(reasoning) = delta.remove("reasoning") {
                changed = true;
                if let Value::String(text) = reasoning {
                    append_text(delta, "reasoning_content", &text);
                }
            }
            // content parts → reasoning_content + content
            if let Some(Value::Array(parts)) = delta.get("content") {
                let (mut thinking, mut text) = (String::new(), String::new());
                for part in parts {
                    collect_part(part, &mut thinking, &mut text);
                }
                changed = true;
                delta.insert("content".into(), Value::from(text));
                if !thinking.is_empty() {
                    append_text(delta, "reasoning_content", &thinking);
                }
            }
            // tool calls without index
            if let Some(Value::Array(calls)) = delta.get_mut("tool_calls") {
                for call in calls.iter_mut() {
                    let Value::Object(call) = call else { continue };
                    let opened = self.tool_calls.entry(index).or_insert(0);
                    match call.get("index").and_then(Value::as_u64) {
                        Some(i) => *opened = (*opened).max(i + 1),
                        None => {
                            if call.contains_key("id") {
                                *opened += 1;
                            }
                            call.insert("index".into(), Value::from(opened.saturating_sub(1)));
                            if call.contains_key("id") && !call.contains_key("type") {
                                call.insert("type".into(), Value::from("function"));
                            }
                            changed = true;
                        }
                    }
                }
            }
        }
        changed
    }
}

fn append_text(delta: &mut Map<String, Value>, field: &str, text: &str) {
    match delta.get_mut(field) {
        Some(Value::String(existing)) => existing.push_str(text),
        _ => {
            delta.insert(field.into(), Value::from(text));
        }
    }
}

/// Mistral content parts: `{"type":"text","text":…}` and
/// `{"type":"thinking","thinking":[{"type":"text","text":…}]}`.
fn collect_part(part: &Value, thinking: &mut String, text: &mut String) {
    match part.get("type").and_then(Value::as_str) {
        Some("thinking") => {
            for inner in part["thinking"].as_array().into_iter().flatten() {
                thinking.push_str(inner["text"].as_str().unwrap_or_default());
            }
            if let Some(t) = part["thinking"].as_str() {
                thinking.push_str(t);
            }
        }
        _ => text.push_str(part["text"].as_str().unwrap_or_default()),
    }
}

/// The canonical error event for an upstream error object.
fn error_event(error: &Value) -> bytes::Bytes {
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let error_type = error
        .get("type")
        .and_then(text)
        .unwrap_or_else(|| "upstream_error".into());
    let code = error
        .get("code")
        .and_then(text)
        .unwrap_or_else(|| error_type.clone());
    let message = error
        .get("message")
        .and_then(text)
        .or_else(|| text(error))
        .unwrap_or_else(|| "the provider reported an error".into());
    error_frame(&error_type, &code, &message)
}

impl Dialect for OpenAiCompatible {
    fn on_block(&mut self, block: Block, out: &mut Frames) -> Result<(), StreamError> {
        if self.terminated {
            return Ok(()); // nothing follows [DONE] or an error
        }
        let Some(event) = block.event() else {
            out.push(block.normalized());
            return Ok(());
        };
        let data = event.data_bytes();
        let typed_error = event.event_type() == Some("error");
        let suspicious = typed_error || needs_fixing().any_in(data);
        if !suspicious {
            if is_terminator(&block) {
                self.terminated = true;
            }
            out.push(block.normalized());
            return Ok(());
        }
        let Ok(Value::Object(mut chunk)) = serde_json::from_slice::<Value>(data) else {
            if typed_error {
                self.terminated = true;
                out.push(error_frame(
                    "upstream_error",
                    "upstream_error",
                    event.data(),
                ));
                return Ok(());
            }
            return Err(StreamError::MalformedEvent {
                detail: format!("expected a JSON chunk, got {:?}", truncate(event.data())),
            });
        };
        if let Some(error) = chunk.get("error").filter(|e| !e.is_null()) {
            self.terminated = true;
            tracing::warn!(error = %error, "upstream error in the stream");
            out.push(error_event(error));
            return Ok(());
        }
        if typed_error {
            self.terminated = true;
            out.push(error_event(&Value::Object(chunk)));
            return Ok(());
        }
        if matches!(
            chunk.get("type").and_then(Value::as_str),
            Some("speech.audio.done" | "transcript.text.done")
        ) {
            self.audio_done = true;
        }
        if chunk.get("type").and_then(Value::as_str) == Some("transcript.text.delta") {
            // Both fields: OpenAI's SDKs read `delta`, simpler clients read `text`.
            if !chunk.contains_key("text") {
                let delta = chunk
                    .get("delta")
                    .cloned()
                    .unwrap_or_else(|| Value::from(""));
                chunk.insert("text".into(), delta);
                out.push(data_frame(&Value::Object(chunk)));
                return Ok(());
            }
        }
        if self.fix_choices(&mut chunk) {
            out.push(data_frame(&Value::Object(chunk)));
        } else {
            out.push(block.normalized());
        }
        Ok(())
    }

    fn on_unterminated(&mut self, block: Block, out: &mut Frames) -> Result<(), StreamError> {
        if block.event().is_some_and(|e| e.data() == "[DONE]") {
            return self.on_block(block, out);
        }
        Err(crate::dialect::cut_mid_event())
    }

    fn on_end(&mut self, out: &mut Frames) -> Result<(), StreamError> {
        if self.terminated {
            Ok(())
        } else if self.audio_done {
            // Some servers end an audio stream at its `.done` event: complete, so the
            // standard `[DONE]` is added.
            out.push(bytes::Bytes::from_static(crate::standard::DONE_FRAME));
            Ok(())
        } else {
            Err(StreamError::Truncated {
                detail: "the upstream ended without [DONE] or a terminal event",
            })
        }
    }
}

fn truncate(text: &str) -> String {
    text.chars().take(120).collect()
}
