//! OpenAI-compatible upstreams with their quirks → canonical chat completion chunks.

use crate::dialect::Dialect;
use crate::error::StreamError;
use crate::sse::Block;
use crate::standard::Frames;
use crate::standard::data_frame;
use crate::standard::error_frame;
use crate::standard::frame::{is_terminator, not_json};
use crate::standard::json;
use crate::standard::probe::{Needle, Needles, Value as Follows};
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
/// Chunks that need none of this are not rebuilt: one probe for their keys decides (however
/// the JSON is written), and they pass as they came once their data is checked to be JSON.
/// An event whose data is not JSON (nor `[DONE]`) ends the stream with
/// [`StreamError::MalformedEvent`]: every SDK would fail to parse it.
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

/// The keys of the chunks this translator rewrites, however the JSON is written (and escapes
/// that may hide them); a chunk with none of them passes as it is.
fn needs_fixing() -> &'static Needles {
    static NEEDLES: OnceLock<Needles> = OnceLock::new();
    NEEDLES.get_or_init(|| {
        Needles::new(&[
            Needle::Key(b"\"reasoning\"", Follows::Any),
            Needle::Key(b"\"content\"", Follows::Starts(b'[')),
            Needle::Key(b"\"tool_calls\"", Follows::Any),
            Needle::Key(b"\"error\"", Follows::Any),
            Needle::Text(b"\"transcript.text.delta\""),
            Needle::Text(b"speech.audio.done\""),
            Needle::Text(b"transcript.text.done\""),
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
            // Passed on as it is, so it must be what a client's SDK can parse.
            if &data[..] != b"[DONE]" {
                if let Some(detail) = not_json(data) {
                    return Err(StreamError::MalformedEvent { detail });
                }
            }
            if is_terminator(&block) {
                self.terminated = true;
            }
            out.push(block.normalized());
            return Ok(());
        }
        let Ok(Value::Object(mut chunk)) = json::parse::<Value>(data) else {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The frames out for `input` decoded whole, and the error that ended the stream, if any.
    fn run(input: &[u8]) -> (Vec<String>, Option<StreamError>) {
        crate::dialect::run_whole(&mut OpenAiCompatible::new(), input)
    }

    const CHUNK: &str = r#"{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"#;

    /// An event whose data is not JSON ends the stream with `malformed_event` after what came
    /// before it; nothing of it reaches the client.
    #[test]
    fn data_that_is_not_json_is_a_malformed_event() {
        for (name, bad) in [
            (
                "raw NUL in a string",
                &b"data: {\"choices\":[{\"delta\":{\"content\":\"a\0b\"}}]}\n\n"[..],
            ),
            (
                "raw control character",
                b"data: {\"choices\":[{\"delta\":{\"content\":\"a\x1bb\"}}]}\n\n",
            ),
            (
                "truncated object",
                b"data: {\"id\":\"c\",\"choices\":[{\"index\":0\n\n",
            ),
            (
                "trailing garbage",
                b"data: {\"id\":\"c\",\"choices\":[]} x\n\n",
            ),
            ("two objects", b"data: {\"id\":\"c\"}{\"id\":\"d\"}\n\n"),
            (
                "split by a lone CR",
                b"data: {\"id\":\"c\",\"choices\":[{\"delta\":{\"content\":\"a\rb\"}}]}\n\n",
            ),
            ("plain text", b"data: hello\n\n"),
            ("empty", b"data:\n\n"),
            (
                "a suspicious chunk cut",
                b"data: {\"error\":{\"message\":\"x\"\n\n",
            ),
            (
                "an audio event cut",
                b"data: {\"type\":\"speech.audio.delta\",\"audio\":\"AAA\n\n",
            ),
        ] {
            let mut input = format!("data: {CHUNK}\n\n").into_bytes();
            input.extend_from_slice(bad);
            input.extend_from_slice(b"data: [DONE]\n\n");
            let (frames, failure) = run(&input);
            assert_eq!(frames, [format!("data: {CHUNK}\n\n")], "{name}");
            let failure = failure.unwrap_or_else(|| panic!("{name}: no error"));
            assert_eq!(failure.code(), "malformed_event", "{name}: {failure}");
            assert!(!failure.to_string().contains('\0'), "{name}: {failure}");
        }
    }

    /// JSON however written passes as it came: whitespace, escapes, a lone CR between
    /// events; `[DONE]` and comments are not JSON and pass too.
    #[test]
    fn json_passes_as_it_came() {
        let input = concat!(
            ": keep-alive\n\n",
            "data:  {\"id\" : \"c\",\t\"choices\" : [ ] }  \n\n",
            "data: {\"a\":\"\\u0000\\n\\u00e9\"}\r\r",
            "data: [DONE]\n\n",
        );
        let (frames, failure) = run(input.as_bytes());
        assert!(failure.is_none(), "{failure:?}");
        assert_eq!(
            frames,
            [
                ": keep-alive\n\n",
                "data:  {\"id\" : \"c\",\t\"choices\" : [ ] }  \n\n",
                "data: {\"a\":\"\\u0000\\n\\u00e9\"}\n\n",
                "data: [DONE]\n\n",
            ]
        );
    }

    /// An upstream's error chunk, however written, becomes the canonical error event.
    #[test]
    fn an_error_chunk_however_written_is_the_canonical_error_event() {
        let canonical = error_frame("invalid_request_error", "bad", "no");
        for error in [
            r#"{"error":{"type":"invalid_request_error","code":"bad","message":"no"}}"#,
            r#"{ "error" : { "type" : "invalid_request_error", "code" : "bad", "message" : "no" } }"#,
            "{\t\"error\"\t:\t{\"message\":\"no\",\"code\":\"bad\",\"type\":\"invalid_request_error\"}}",
            r#"{"\u0065rror":{"type":"invalid_request_error","code":"bad","message":"no"}}"#,
            r#"{"id":"c","choices":[],"error" :{"type":"invalid_request_error","code":"bad","message":"no"}}"#,
        ] {
            let input = format!("data: {CHUNK}\n\ndata: {error}\n\n");
            let (frames, failure) = run(input.as_bytes());
            assert!(failure.is_none(), "{error}: {failure:?}");
            assert_eq!(frames.len(), 2, "{error}: {frames:?}");
            assert_eq!(frames[1].as_bytes(), &canonical[..], "{error}");
        }
    }

    /// The rewrites, whatever the spacing or escapes of their keys.
    #[test]
    fn rewrites_do_not_depend_on_formatting() {
        for chunk in [
            r#"{"choices":[{"index":0,"delta":{"reasoning" : "think"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"re\u0061soning":"think"}}]}"#,
        ] {
            let (frames, _) = run(format!("data: {chunk}\n\n").as_bytes());
            let value: Value =
                serde_json::from_str(frames[0].strip_prefix("data: ").unwrap().trim_end()).unwrap();
            assert_eq!(
                value["choices"][0]["delta"]["reasoning_content"], "think",
                "{chunk}"
            );
            assert!(
                value["choices"][0]["delta"].get("reasoning").is_none(),
                "{chunk}"
            );
        }
        for chunk in [
            r#"{"choices":[{"index":0,"delta":{"content" : [{"type":"text","text":"Hi"}]}}]}"#,
            "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\t[{\"type\":\"text\",\"text\":\"Hi\"}]}}]}",
        ] {
            let (frames, _) = run(format!("data: {chunk}\n\n").as_bytes());
            assert!(
                frames[0].contains(r#""content":"Hi""#),
                "{chunk}: {frames:?}"
            );
        }
        let delta = r#"{"type" : "transcript.text.delta", "delta" : "Hi"}"#;
        let (frames, _) = run(format!("data: {delta}\n\n").as_bytes());
        assert!(frames[0].contains(r#""text":"Hi""#), "{frames:?}");
        let done = r#"{"type":"transcript\u002etext.done","text":"Hi"}"#;
        let (frames, failure) = run(format!("data: {done}\n\n").as_bytes());
        assert!(failure.is_none(), "{failure:?}");
        assert_eq!(frames.last().unwrap(), "data: [DONE]\n\n");
    }
}
