//! Folding a standard chat (or text completion) stream into the one object a non-streaming
//! client expects.

use crate::standard::events::ChatCompletionChunk;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

#[derive(Debug, Default)]
struct Choice {
    content: Option<String>,
    reasoning: Option<String>,
    refusal: Option<String>,
    /// Anthropic's thinking signature (`delta.reasoning_signature`).
    reasoning_signature: Option<String>,
    /// By the tool call's `index`.
    tool_calls: BTreeMap<u32, ToolCall>,
    finish_reason: Option<String>,
}

#[derive(Debug, Default)]
struct ToolCall {
    id: String,
    name: String,
    arguments: String,
    /// Other fields of the call (`extra_content` with Gemini's thought signature).
    extra: Map<String, Value>,
}

fn append(into: &mut Option<String>, text: &str) {
    into.get_or_insert_with(String::new).push_str(text);
}

/// Reads the events of a standard stream (section 3 of the design: chunks, one last chunk with
/// the finish reasons and usage, `[DONE]`) and builds the `chat.completion` (or
/// `text_completion`) object OpenAI returns for `stream: false`. An error event is kept
/// aside: [`ChatCompletionAggregator::error`].
///
/// ```
/// use tower_llm_stream::provider::ChatCompletionAggregator;
///
/// let mut folded = ChatCompletionAggregator::new();
/// for data in [
///     r#"{"id":"c1","object":"chat.completion.chunk","created":7,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}]}"#,
///     r#"{"id":"c1","object":"chat.completion.chunk","created":7,"model":"m","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":null}]}"#,
///     r#"{"id":"c1","object":"chat.completion.chunk","created":7,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#,
///     "[DONE]",
/// ] {
///     folded.push(data).unwrap();
/// }
/// let completion = folded.finish();
/// assert_eq!(completion["object"], "chat.completion");
/// assert_eq!(completion["choices"][0]["message"]["content"], "Hello");
/// assert_eq!(completion["choices"][0]["finish_reason"], "stop");
/// assert_eq!(completion["usage"]["total_tokens"], 5);
/// ```
#[derive(Debug, Default)]
pub struct ChatCompletionAggregator {
    id: String,
    created: u64,
    model: String,
    text_completion: bool,
    extra: Map<String, Value>,
    choices: BTreeMap<u32, Choice>,
    usage: Option<Value>,
    error: Option<Value>,
    done: bool,
}

impl ChatCompletionAggregator {
    /// Nothing read yet.
    #[must_use]
    pub fn new() -> Self {
        ChatCompletionAggregator::default()
    }

    /// Reads one event's data. `[DONE]` marks the end; `{"error":…}` is kept as the error.
    /// Anything else must be a chunk: a malformed one is an `Err` naming what was wrong.
    pub fn push(&mut self, data: &str) -> Result<(), serde_json::Error> {
        if data == "[DONE]" {
            self.done = true;
            return Ok(());
        }
        let chunk: ChatCompletionChunk<'_> = match serde_json::from_str(data) {
            Ok(chunk) => chunk,
            Err(e) => {
                let value: Value = serde_json::from_str(data)?;
                if let Some(error) = value.get("error") {
                    self.error = Some(error.clone());
                    return Ok(());
                }
                return Err(e);
            }
        };
        if self.id.is_empty() {
            self.id = chunk.id.into_owned();
            self.created = chunk.created;
            self.model = chunk.model.into_owned();
            self.text_completion = chunk.object == "text_completion";
            self.extra = chunk.extra;
        }
        if let Some(usage) = chunk.usage {
            self.usage = Some(serde_json::to_value(usage)?);
        }
        for choice in chunk.choices {
            let slot = self.choices.entry(choice.index).or_default();
            if let Some(text) = &choice.text {
                append(&mut slot.content, text);
            }
            if let Some(reason) = choice.finish_reason {
                slot.finish_reason = Some(reason.into_owned());
            }
            let Some(delta) = choice.delta else { continue };
            if let Some(text) = &delta.content {
                append(&mut slot.content, text);
            }
            if let Some(text) = &delta.reasoning_content {
                append(&mut slot.reasoning, text);
            }
            if let Some(text) = &delta.refusal {
                append(&mut slot.refusal, text);
            }
            if let Some(signature) = delta
                .extra
                .get("reasoning_signature")
                .and_then(Value::as_str)
            {
                append(&mut slot.reasoning_signature, signature);
            }
            for call in delta.tool_calls {
                let into = slot.tool_calls.entry(call.index).or_default();
                if let Some(id) = call.id {
                    into.id = id.into_owned();
                }
                into.extra.extend(call.extra);
                if let Some(function) = call.function {
                    if let Some(name) = function.name {
                        into.name.push_str(&name);
                    }
                    if let Some(arguments) = function.arguments {
                        into.arguments.push_str(&arguments);
                    }
                }
            }
        }
        Ok(())
    }

    /// The `error` object of the stream's error event, if it had one.
    #[must_use]
    pub fn error(&self) -> Option<&Value> {
        self.error.as_ref()
    }

    /// Whether `[DONE]` was read.
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The completion object.
    #[must_use]
    pub fn finish(self) -> Value {
        let choices: Vec<Value> = self
            .choices
            .into_iter()
            .map(|(index, choice)| {
                if self.text_completion {
                    return json!({
                        "index": index,
                        "text": choice.content.unwrap_or_default(),
                        "logprobs": null,
                        "finish_reason": choice.finish_reason,
                    });
                }
                let mut message = Map::new();
                message.insert("role".into(), "assistant".into());
                message.insert("content".into(), choice.content.into());
                message.insert("refusal".into(), choice.refusal.into());
                if let Some(reasoning) = choice.reasoning {
                    message.insert("reasoning_content".into(), reasoning.into());
                }
                if let Some(signature) = choice.reasoning_signature {
                    message.insert("reasoning_signature".into(), signature.into());
                }
                if !choice.tool_calls.is_empty() {
                    let calls: Vec<Value> = choice
                        .tool_calls
                        .into_values()
                        .map(|c| {
                            let mut call = json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}});
                            if let Value::Object(call) = &mut call {
                                call.extend(c.extra);
                            }
                            call
                        })
                        .collect();
                    message.insert("tool_calls".into(), calls.into());
                }
                json!({
                    "index": index,
                    "message": message,
                    "logprobs": null,
                    "finish_reason": choice.finish_reason,
                })
            })
            .collect();
        let mut out = Map::new();
        out.insert("id".into(), self.id.into());
        out.insert(
            "object".into(),
            if self.text_completion {
                "text_completion"
            } else {
                "chat.completion"
            }
            .into(),
        );
        out.insert("created".into(), self.created.into());
        out.insert("model".into(), self.model.into());
        out.insert("choices".into(), choices.into());
        if let Some(usage) = self.usage {
            out.insert("usage".into(), usage);
        }
        for (key, value) in self.extra {
            if !matches!(key.as_str(), "usage" | "obfuscation") {
                out.entry(key).or_insert(value);
            }
        }
        Value::Object(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_calls_reasoning_and_two_choices() {
        let mut folded = ChatCompletionAggregator::new();
        for data in [
            r#"{"id":"x","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","reasoning_content":"think"},"finish_reason":null},{"index":1,"delta":{"role":"assistant","content":"B"},"finish_reason":null}]}"#,
            r#"{"id":"x","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"a\""}}]},"finish_reason":null}]}"#,
            r#"{"id":"x","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":":1}"}}]},"finish_reason":null}]}"#,
            r#"{"id":"x","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"},{"index":1,"delta":{},"finish_reason":"stop"}]}"#,
            "[DONE]",
        ] {
            folded.push(data).unwrap();
        }
        assert!(folded.is_done() && folded.error().is_none());
        let out = folded.finish();
        assert_eq!(
            out["choices"][0]["message"],
            json!({"role": "assistant", "content": null, "refusal": null, "reasoning_content": "think",
                   "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]})
        );
        assert_eq!(out["choices"][1]["message"]["content"], "B");
        assert_eq!(out["choices"][1]["finish_reason"], "stop");
        assert!(out.get("usage").is_none(), "never invented");
    }

    #[test]
    fn errors_and_malformed_chunks() {
        let mut folded = ChatCompletionAggregator::new();
        folded
            .push(
                r#"{"error":{"type":"upstream_error","code":"stream_truncated","message":"cut"}}"#,
            )
            .unwrap();
        assert_eq!(folded.error().unwrap()["code"], "stream_truncated");
        assert!(folded.push("{not json").is_err());
        assert!(folded.push(r#"{"id":1}"#).is_err());
    }

    #[test]
    fn text_completions() {
        let mut folded = ChatCompletionAggregator::new();
        folded.push(r#"{"id":"t","object":"text_completion","created":1,"model":"m","choices":[{"index":0,"text":"ab","finish_reason":null}]}"#).unwrap();
        folded.push(r#"{"id":"t","object":"text_completion","created":1,"model":"m","choices":[{"index":0,"text":"","finish_reason":"length"}]}"#).unwrap();
        let out = folded.finish();
        assert_eq!(out["object"], "text_completion");
        assert_eq!(
            out["choices"][0],
            json!({"index": 0, "text": "ab", "logprobs": null, "finish_reason": "length"})
        );
    }
}
