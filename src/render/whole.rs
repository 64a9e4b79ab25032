//! Whole (non-streamed) answers and error bodies in each client API's shape.

use super::ClientApi;
use super::chat::{Counts, ErrorInfo};
use super::{anthropic, gemini, responses};
use bytes::Bytes;
use serde_json::{Map, Value, json};

/// `info` as the error body of `api` for an HTTP `status`.
pub(super) fn api_error_body(api: ClientApi, status: u16, info: &ErrorInfo) -> Bytes {
    let value = match api {
        ClientApi::AnthropicMessages => anthropic::error_body(info, status),
        ClientApi::Gemini => gemini::error_body(info, status),
        ClientApi::ChatCompletions | ClientApi::Completions | ClientApi::Responses => {
            json!({"error": {"type": info.kind, "code": info.code, "message": info.message}})
        }
    };
    Bytes::from(value.to_string())
}

/// A standard error body (`{"error":{"type","code","message"}}`, the shape every error
/// response of the layers and the example proxy has) rewritten in `api`'s error shape:
/// Anthropic's `{"type":"error","error":{"type","message"}}`, Gemini's
/// `{"error":{"code","message","status"}}`; OpenAI's APIs keep it as it is.
///
/// ```
/// use http::StatusCode;
/// use tower_llm_stream::render::{ClientApi, error_body};
///
/// let standard = br#"{"error":{"type":"invalid_request_error","code":"missing_model","message":"the request needs a model"}}"#;
/// let body = error_body(ClientApi::Gemini, StatusCode::BAD_REQUEST, standard);
/// let gemini: serde_json::Value = serde_json::from_slice(&body).unwrap();
/// assert_eq!(gemini["error"]["code"], 400);
/// assert_eq!(gemini["error"]["status"], "INVALID_ARGUMENT");
/// let body = error_body(ClientApi::AnthropicMessages, StatusCode::BAD_REQUEST, standard);
/// let anthropic: serde_json::Value = serde_json::from_slice(&body).unwrap();
/// assert_eq!(anthropic["type"], "error");
/// assert_eq!(anthropic["error"]["type"], "invalid_request_error");
/// ```
#[must_use]
pub fn error_body(api: ClientApi, status: http::StatusCode, body: &[u8]) -> Bytes {
    if matches!(
        api,
        ClientApi::ChatCompletions | ClientApi::Completions | ClientApi::Responses
    ) {
        return Bytes::copy_from_slice(body);
    }
    let info = match serde_json::from_slice::<Value>(body) {
        Ok(value) => ErrorInfo::from_body(&value),
        Err(_) => ErrorInfo::new(
            "upstream_error",
            "upstream_error",
            String::from_utf8_lossy(body).into_owned(),
        ),
    };
    api_error_body(api, status.as_u16(), &info)
}

/// One `chat.completion` (as [`ChatCompletionAggregator`](crate::provider::ChatCompletionAggregator)
/// folds a stream) rewritten as `api`'s whole answer: a `text_completion`, a Responses
/// `response`, an Anthropic `message`, a Gemini `GenerateContentResponse`. The same mapping
/// as the stream (see the [module docs](super)); choice 0 only, but for text completions.
///
/// ```
/// use serde_json::json;
/// use tower_llm_stream::render::{ClientApi, whole_response};
///
/// let completion = json!({"id": "c1", "object": "chat.completion", "created": 1, "model": "m",
///     "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "length"}],
///     "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}});
/// let message = whole_response(ClientApi::AnthropicMessages, &completion);
/// assert_eq!(message["content"][0], json!({"type": "text", "text": "Hi"}));
/// assert_eq!(message["stop_reason"], "max_tokens");
/// assert_eq!(message["usage"]["input_tokens"], 3);
/// let response = whole_response(ClientApi::Responses, &completion);
/// assert_eq!(response["status"], "incomplete");
/// assert_eq!(response["output"][0]["content"][0]["text"], "Hi");
/// ```
#[must_use]
pub fn whole_response(api: ClientApi, completion: &Value) -> Value {
    let choice = completion["choices"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["index"] == 0))
        .cloned()
        .unwrap_or(Value::Null);
    let message = &choice["message"];
    let finish = choice["finish_reason"].as_str();
    let counts = completion.get("usage").and_then(Counts::from_value);
    let text = message["content"]
        .as_str()
        .filter(|t| !t.is_empty())
        .or(message["refusal"].as_str());
    let reasoning = message["reasoning_content"]
        .as_str()
        .filter(|t| !t.is_empty());
    let calls: Vec<&Value> = message["tool_calls"]
        .as_array()
        .map(|c| c.iter().collect())
        .unwrap_or_default();
    let model = completion["model"].clone();
    match api {
        ClientApi::ChatCompletions => completion.clone(),
        ClientApi::Completions => {
            let choices: Vec<Value> = completion["choices"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    json!({"index": c["index"], "text": c["message"]["content"].as_str().or(c["text"].as_str()).unwrap_or_default(),
                        "logprobs": null, "finish_reason": c["finish_reason"]})
                })
                .collect();
            let mut out = json!({"id": completion["id"], "object": "text_completion",
                "created": completion["created"], "model": model, "choices": choices});
            if let Some(usage) = completion.get("usage") {
                out["usage"] = usage.clone();
            }
            out
        }
        ClientApi::Responses => {
            let mut output = Vec::new();
            if let Some(reasoning) = reasoning {
                output.push(responses::reasoning_item(
                    super::new_id("rs_"),
                    vec![json!({"type": "summary_text", "text": reasoning})],
                    message["reasoning_signature"].as_str().map(str::to_owned),
                ));
            }
            if let Some(content) = message["content"].as_str().filter(|t| !t.is_empty()) {
                output.push(json!({"id": super::new_id("msg_"), "type": "message", "status": "completed", "role": "assistant",
                    "content": [{"type": "output_text", "text": content, "annotations": [], "logprobs": []}]}));
            } else if let Some(refusal) = message["refusal"].as_str().filter(|t| !t.is_empty()) {
                output.push(json!({"id": super::new_id("msg_"), "type": "message", "status": "completed", "role": "assistant",
                    "content": [{"type": "refusal", "refusal": refusal}]}));
            }
            for call in &calls {
                output.push(json!({"id": super::new_id("fc_"), "type": "function_call", "status": "completed",
                    "call_id": call["id"], "name": call["function"]["name"], "arguments": call["function"]["arguments"]}));
            }
            let (status, details) = responses::terminal(finish);
            json!({
                "id": super::new_id("resp_"), "object": "response", "created_at": completion["created"],
                "status": status, "error": null, "incomplete_details": details, "instructions": null,
                "max_output_tokens": null, "model": model, "output": output,
                "parallel_tool_calls": true, "previous_response_id": null,
                "reasoning": {"effort": null, "summary": null}, "store": false, "temperature": null,
                "text": {"format": {"type": "text"}}, "tool_choice": "auto", "tools": [], "top_p": null,
                "truncation": "disabled", "usage": counts.map_or(Value::Null, responses::usage), "metadata": {},
            })
        }
        ClientApi::AnthropicMessages => {
            let mut content = Vec::new();
            if let Some(reasoning) = reasoning {
                content.push(json!({"type": "thinking", "thinking": reasoning,
                    "signature": message["reasoning_signature"].as_str().unwrap_or_default()}));
            }
            if let Some(text) = text {
                content.push(json!({"type": "text", "text": text}));
            }
            for call in &calls {
                let input = call["function"]["arguments"]
                    .as_str()
                    .and_then(|a| serde_json::from_str::<Value>(a).ok())
                    .filter(Value::is_object)
                    .unwrap_or_else(|| Value::Object(Map::new()));
                content.push(json!({"type": "tool_use", "id": call["id"], "name": call["function"]["name"], "input": input}));
            }
            json!({
                "id": super::new_id("msg_"), "type": "message", "role": "assistant", "model": model,
                "content": content, "stop_reason": anthropic::stop_reason(finish), "stop_sequence": null,
                "usage": counts.map_or_else(|| json!({"input_tokens": 0, "output_tokens": 0}), anthropic::usage),
            })
        }
        ClientApi::Gemini => {
            let mut parts = Vec::new();
            if let Some(reasoning) = reasoning {
                parts.push(json!({"text": reasoning, "thought": true}));
            }
            if let Some(text) = text {
                parts.push(json!({"text": text}));
            }
            for call in &calls {
                let args = call["function"]["arguments"]
                    .as_str()
                    .and_then(|a| serde_json::from_str::<Value>(a).ok())
                    .filter(Value::is_object)
                    .unwrap_or_else(|| Value::Object(Map::new()));
                let mut part =
                    json!({"functionCall": {"name": call["function"]["name"], "args": args}});
                if let Some(signature) = call
                    .pointer("/extra_content/google/thought_signature")
                    .and_then(Value::as_str)
                {
                    part["thoughtSignature"] = signature.into();
                }
                parts.push(part);
            }
            let mut out = json!({"candidates": [{"content": {"parts": parts, "role": "model"},
                "finishReason": gemini::finish_reason(finish), "index": 0}]});
            if let Some(counts) = counts {
                out["usageMetadata"] = gemini::usage_metadata(counts);
            }
            out["modelVersion"] = model;
            out["responseId"] = super::new_id("").into();
            out
        }
    }
}
