//! OpenAI Responses and text completions requests read as the standard (OpenAI chat)
//! request, for providers that do not have those APIs.

use crate::provider::RequestError;
use crate::provider::client::{invalid, refuse, text_of_blocks};
use serde_json::{Map, Value, json};

/// The chat request for a text completions body: the prompt as one user message.
pub(crate) fn from_completions(body: &Map<String, Value>) -> Result<Value, RequestError> {
    refuse(
        body,
        &["suffix", "echo", "best_of", "logprobs", "logit_bias"],
        "completions",
    )?;
    let prompt = match body.get("prompt") {
        Some(Value::String(p)) => p.clone(),
        Some(Value::Array(items)) if items.len() == 1 && items[0].is_string() => {
            items[0].as_str().unwrap_or_default().to_owned()
        }
        Some(Value::Array(_)) => {
            return Err(RequestError::bad_request(
                "unsupported_parameter",
                "prompt: only one prompt string can be translated for this provider (or token arrays)",
            ));
        }
        _ => return Err(invalid("prompt must be a string")),
    };
    let mut chat = Map::new();
    chat.insert(
        "messages".into(),
        json!([{"role": "user", "content": prompt}]),
    );
    for key in [
        "max_tokens",
        "temperature",
        "top_p",
        "stop",
        "n",
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "user",
    ] {
        if let Some(value) = body.get(key).filter(|v| !v.is_null()) {
            chat.insert(key.into(), value.clone());
        }
    }
    Ok(Value::Object(chat))
}

/// The chat request for a Responses API body: `instructions` as the system message, `input`
/// items as messages, tool calls and their outputs, reasoning items (their
/// `encrypted_content` as the signature the provider gave).
pub(crate) fn from_responses(body: &Map<String, Value>) -> Result<Value, RequestError> {
    refuse(
        body,
        &["previous_response_id", "conversation", "prompt"],
        "responses",
    )?;
    let mut messages = Vec::new();
    if let Some(instructions) = body.get("instructions").filter(|v| !v.is_null()) {
        messages.push(
            json!({"role": "system", "content": text_of_blocks(instructions, "instructions")?}),
        );
    }
    match body.get("input") {
        Some(Value::String(text)) => messages.push(json!({"role": "user", "content": text})),
        Some(Value::Array(items)) => {
            for (at, item) in items.iter().enumerate() {
                input_item(item, at, &mut messages)?;
            }
        }
        _ => return Err(invalid("input must be a string or an array of input items")),
    }
    let mut chat = Map::new();
    chat.insert("messages".into(), messages.into());
    for (from, to) in [
        ("max_output_tokens", "max_tokens"),
        ("temperature", "temperature"),
        ("top_p", "top_p"),
        ("user", "user"),
        ("parallel_tool_calls", "parallel_tool_calls"),
    ] {
        if let Some(value) = body.get(from).filter(|v| !v.is_null()) {
            chat.insert(to.into(), value.clone());
        }
    }
    if let Some(effort) = body
        .get("reasoning")
        .and_then(|r| r.get("effort"))
        .filter(|v| v.is_string())
    {
        chat.insert("reasoning_effort".into(), effort.clone());
    }
    if let Some(format) = body
        .get("text")
        .and_then(|t| t.get("format"))
        .filter(|v| v.is_object())
    {
        match format["type"].as_str() {
            Some("json_schema") => {
                chat.insert("response_format".into(), json!({"type": "json_schema", "json_schema": {
                    "name": format.get("name").cloned().unwrap_or_else(|| "response".into()),
                    "schema": format["schema"], "strict": format.get("strict").cloned().unwrap_or(Value::Null)}}));
            }
            Some("json_object") => {
                chat.insert("response_format".into(), json!({"type": "json_object"}));
            }
            _ => {}
        }
    }
    let mut tools = Vec::new();
    for (at, tool) in body
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        if tool["type"] != "function" {
            return Err(RequestError::bad_request(
                "unsupported_parameter",
                format!(
                    "tools[{at}]: built-in tools ({}) cannot be translated; only function tools",
                    tool["type"]
                ),
            ));
        }
        let mut function = json!({"name": tool["name"], "parameters": tool.get("parameters").filter(|p| p.is_object()).cloned().unwrap_or_else(|| json!({"type": "object", "properties": {}}))});
        if let Some(description) = tool.get("description").filter(|d| d.is_string()) {
            function["description"] = description.clone();
        }
        tools.push(json!({"type": "function", "function": function}));
    }
    if !tools.is_empty() {
        chat.insert("tools".into(), tools.into());
    }
    if let Some(choice) = body.get("tool_choice").filter(|v| !v.is_null()) {
        let choice = match choice {
            Value::String(_) => choice.clone(),
            _ if choice["type"] == "function" => {
                json!({"type": "function", "function": {"name": choice["name"]}})
            }
            _ => {
                return Err(invalid(
                    "tool_choice must be auto, none, required or a function",
                ));
            }
        };
        chat.insert("tool_choice".into(), choice);
    }
    Ok(Value::Object(chat))
}

fn input_item(item: &Value, at: usize, messages: &mut Vec<Value>) -> Result<(), RequestError> {
    let kind = item["type"].as_str().unwrap_or("message");
    match kind {
        "message" => {
            let role = item["role"]
                .as_str()
                .ok_or_else(|| invalid(format!("input[{at}].role must be a string")))?;
            let content = match &item["content"] {
                Value::String(text) => Value::String(text.clone()),
                Value::Array(parts) => {
                    let mut out = Vec::new();
                    for part in parts {
                        match part["type"].as_str() {
                            Some("input_text" | "output_text" | "text") => {
                                out.push(json!({"type": "text", "text": part["text"]}))
                            }
                            Some("input_image") => {
                                let url = part.get("image_url").and_then(Value::as_str).ok_or_else(|| RequestError::bad_request(
                                    "unsupported_parameter", format!("input[{at}]: only input_image parts with an image_url can be translated")))?;
                                out.push(json!({"type": "image_url", "image_url": {"url": url}}));
                            }
                            Some("refusal") => {
                                out.push(json!({"type": "text", "text": part["refusal"]}))
                            }
                            other => {
                                return Err(RequestError::bad_request(
                                    "unsupported_parameter",
                                    format!(
                                        "input[{at}]: content part type {other:?} cannot be translated"
                                    ),
                                ));
                            }
                        }
                    }
                    if role == "assistant" || role == "system" || role == "developer" {
                        Value::String(text_of_blocks(&Value::Array(out), &format!("input[{at}]"))?)
                    } else {
                        Value::Array(out)
                    }
                }
                _ => {
                    return Err(invalid(format!(
                        "input[{at}].content must be a string or an array of parts"
                    )));
                }
            };
            // An assistant message after reasoning or calls of the same turn joins them.
            if role == "assistant" {
                if let Some(last) = messages
                    .last_mut()
                    .filter(|m| m["role"] == "assistant" && m["content"].is_null())
                {
                    last["content"] = content;
                    return Ok(());
                }
            }
            messages.push(json!({"role": role, "content": content}));
        }
        "function_call" => {
            let call = json!({"id": item["call_id"], "type": "function", "function": {"name": item["name"], "arguments": item["arguments"]}});
            match messages.last_mut().filter(|m| m["role"] == "assistant") {
                Some(last) if last.get("tool_calls").is_some_and(Value::is_array) => {
                    last["tool_calls"]
                        .as_array_mut()
                        .expect("checked")
                        .push(call);
                }
                Some(last) if last["content"].is_null() => last["tool_calls"] = json!([call]),
                _ => messages
                    .push(json!({"role": "assistant", "content": null, "tool_calls": [call]})),
            }
        }
        "function_call_output" => {
            let output = match &item["output"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            messages
                .push(json!({"role": "tool", "tool_call_id": item["call_id"], "content": output}));
        }
        "reasoning" => {
            let text: String = item["summary"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s["text"].as_str())
                .collect::<Vec<_>>()
                .join("\n");
            let mut message =
                json!({"role": "assistant", "content": null, "reasoning_content": text});
            if let Some(signature) = item["encrypted_content"].as_str() {
                message["reasoning_signature"] = signature.into();
            }
            messages.push(message);
        }
        other => {
            return Err(RequestError::bad_request(
                "unsupported_parameter",
                format!("input[{at}]: item type {other:?} cannot be translated for this provider"),
            ));
        }
    }
    Ok(())
}
