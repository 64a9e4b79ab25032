//! Gemini `streamGenerateContent?alt=sse` → canonical chat completion chunks.

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
use std::collections::BTreeMap;

/// Translates Gemini streams (`models/*:streamGenerateContent?alt=sse`) into OpenAI chat
/// completion chunks.
///
/// - Text parts → `content`; parts with `"thought": true` → `reasoning_content`;
///   `functionCall` parts (Gemini sends them whole) → one `tool_calls` delta each, with the
///   call's `id` when Gemini gives one (else `call_<n>`), `args` as the `arguments` string,
///   and the part's `thoughtSignature` as `extra_content.google.thought_signature` (where
///   Google's OpenAI-compatible API puts it; the next turn must send it back).
/// - `finishReason`: `STOP` → `stop`, or `tool_calls` when the candidate called a function
///   (Gemini reports `STOP` there); `MAX_TOKENS` → `length`; `SAFETY`, `RECITATION`,
///   `BLOCKLIST`, `PROHIBITED_CONTENT`, `SPII`, `IMAGE_SAFETY` → `content_filter`; others →
///   `stop`. Every candidate is a choice (`index`).
/// - `usageMetadata` comes as running totals on every chunk: the last one wins.
///   `prompt_tokens` = `promptTokenCount`; `completion_tokens` = `candidatesTokenCount` +
///   `thoughtsTokenCount` (reasoning counts as completion, as OpenAI counts it), with
///   `completion_tokens_details.reasoning_tokens`; `total_tokens` = `totalTokenCount`;
///   `cachedContentTokenCount` → `prompt_tokens_details.cached_tokens`.
/// - The stream is complete once a candidate has a `finishReason`; the last chunk and
///   `[DONE]` follow when the upstream ends (so a late usage report still counts). Ending
///   without any `finishReason` is [`StreamError::Truncated`]. An `error` object becomes the
///   canonical error event.
#[derive(Debug, Clone, Default)]
pub struct Gemini {
    writer: Option<ChatChunkWriter>,
    /// Per candidate: whether it has had its role chunk, its tool calls, its finish reason.
    candidates: BTreeMap<u32, Candidate>,
    /// The last running totals; turned into OpenAI usage once, at the end.
    usage: Option<UsageMetadata>,
    ended: bool,
}

#[derive(Debug, Clone, Default)]
struct Candidate {
    tool_calls: u32,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(borrow, default)]
    candidates: Vec<CandidateChunk<'a>>,
    #[serde(rename = "usageMetadata", default)]
    usage: Option<UsageMetadata>,
    #[serde(rename = "modelVersion", borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(rename = "responseId", borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct CandidateChunk<'a> {
    #[serde(default)]
    index: u32,
    #[serde(borrow, default)]
    content: Option<Content<'a>>,
    #[serde(rename = "finishReason", borrow, default)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Content<'a> {
    #[serde(borrow, default)]
    parts: Vec<Part<'a>>,
}

#[derive(Deserialize)]
struct Part<'a> {
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(default)]
    thought: bool,
    #[serde(rename = "functionCall", default)]
    function_call: Option<FunctionCall>,
    #[serde(rename = "thoughtSignature", borrow, default)]
    thought_signature: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct FunctionCall {
    #[serde(default)]
    id: Option<String>,
    name: String,
    #[serde(default)]
    args: Option<Value>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
struct UsageMetadata {
    #[serde(rename = "promptTokenCount", default)]
    prompt: Option<u64>,
    #[serde(rename = "candidatesTokenCount", default)]
    candidates: Option<u64>,
    #[serde(rename = "thoughtsTokenCount", default)]
    thoughts: Option<u64>,
    #[serde(rename = "totalTokenCount", default)]
    total: Option<u64>,
    #[serde(rename = "cachedContentTokenCount", default)]
    cached: Option<u64>,
}

fn map_finish_reason(reason: &str, called_tools: bool) -> &'static str {
    match reason {
        "STOP" if called_tools => "tool_calls",
        "MAX_TOKENS" => "length",
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" => {
            "content_filter"
        }
        _ => "stop",
    }
}

impl UsageMetadata {
    fn to_openai(self) -> Value {
        let prompt = self.prompt.unwrap_or(0);
        let thoughts = self.thoughts.unwrap_or(0);
        let completion = self.candidates.unwrap_or(0) + thoughts;
        let mut usage = json!({
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": self.total.unwrap_or(prompt + completion),
        });
        if let Some(cached) = self.cached {
            usage["prompt_tokens_details"] = json!({"cached_tokens": cached});
        }
        if self.thoughts.is_some() {
            usage["completion_tokens_details"] = json!({"reasoning_tokens": thoughts});
        }
        usage
    }
}

impl Gemini {
    /// A translator for one stream.
    #[must_use]
    pub fn new() -> Self {
        Gemini::default()
    }
}

impl Dialect for Gemini {
    fn on_block(&mut self, block: Block, out: &mut Frames) -> Result<(), StreamError> {
        if self.ended {
            return Ok(());
        }
        let Some(event) = block.event() else {
            return Ok(());
        };
        let chunk: Chunk<'_> =
            json::parse(event.data_bytes()).map_err(|err| StreamError::MalformedEvent {
                detail: format!("Gemini chunk is not valid JSON: {err}"),
            })?;
        if let Some(error) = chunk.error {
            self.ended = true;
            let status = error["status"].as_str().unwrap_or("UNKNOWN").to_owned();
            let message = error["message"]
                .as_str()
                .unwrap_or("the provider reported an error");
            out.push(error_frame("upstream_error", &status, message));
            return Ok(());
        }
        let writer = self.writer.get_or_insert_with(|| {
            ChatChunkWriter::new(
                chunk.id.as_deref().unwrap_or("gemini-stream"),
                unix_now(),
                chunk.model.as_deref().unwrap_or("gemini"),
            )
        });
        if chunk.usage.is_some() {
            self.usage = chunk.usage;
        }
        for candidate in &chunk.candidates {
            let index = candidate.index;
            let state = self.candidates.entry(index).or_insert_with(|| {
                out.push(writer.delta_at(index, "{\"role\":\"assistant\",\"content\":\"\"}"));
                Candidate::default()
            });
            for part in candidate.content.iter().flat_map(|c| &c.parts) {
                if let Some(call) = &part.function_call {
                    let n = state.tool_calls;
                    state.tool_calls += 1;
                    let id = call.id.clone().unwrap_or_else(|| format!("call_{n}"));
                    let args = call
                        .args
                        .as_ref()
                        .map_or_else(|| "{}".to_owned(), Value::to_string);
                    // Gemini's signature of the call comes back on the next turn: carried
                    // where Google's own OpenAI-compatible API puts it.
                    let signature = part.thought_signature.as_deref().map_or_else(
                        String::new,
                        |s| {
                            format!(
                                ",\"extra_content\":{{\"google\":{{\"thought_signature\":{}}}}}",
                                json_string(s)
                            )
                        },
                    );
                    let delta = format!(
                        "{{\"tool_calls\":[{{\"index\":{n},\"id\":{},\"type\":\"function\",\"function\":{{\"name\":{},\"arguments\":{}}}{signature}}}]}}",
                        json_string(&id),
                        json_string(&call.name),
                        json_string(&args)
                    );
                    out.push(writer.delta_at(index, &delta));
                } else if let Some(text) = part.text.as_deref().filter(|t| !t.is_empty()) {
                    let field = if part.thought {
                        "reasoning_content"
                    } else {
                        "content"
                    };
                    out.push(
                        writer.delta_at(index, &format!("{{\"{field}\":{}}}", json_string(text))),
                    );
                }
            }
            if let Some(reason) = &candidate.finish_reason {
                state.finish_reason =
                    Some(map_finish_reason(reason, state.tool_calls > 0).to_owned());
            }
        }
        Ok(())
    }

    fn on_unterminated(&mut self, block: Block, out: &mut Frames) -> Result<(), StreamError> {
        crate::dialect::translate_if_whole_json(self, block, out)
    }

    fn on_end(&mut self, out: &mut Frames) -> Result<(), StreamError> {
        if self.ended {
            return Ok(());
        }
        let finished = !self.candidates.is_empty()
            && self.candidates.values().all(|c| c.finish_reason.is_some());
        let Some(writer) = self.writer.as_ref().filter(|_| finished) else {
            return Err(StreamError::Truncated {
                detail: "the Gemini stream ended without a finishReason",
            });
        };
        let reasons: Vec<(u32, &str)> = self
            .candidates
            .iter()
            .map(|(i, c)| (*i, c.finish_reason.as_deref().unwrap_or("stop")))
            .collect();
        let usage = self.usage.map(UsageMetadata::to_openai);
        for frame in writer.finish_all(&reasons, usage.as_ref()) {
            out.push(frame);
        }
        self.ended = true;
        Ok(())
    }
}
