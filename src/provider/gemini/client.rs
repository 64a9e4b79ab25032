//! A Gemini `generateContent` request read as the standard (OpenAI chat) request.

use crate::provider::RequestError;
use crate::provider::client::{invalid, refuse, text_of_blocks};
use serde_json::{Map, Value, json};

/// The chat request for a Gemini request body. Gemini answers function calls by name; each
/// call gets an id (its own, or `call_<n>`) and each `functionResponse` the id of the
/// earliest unanswered call of that name.
pub(crate) fn chat_request(body: &Map<String, Value>) -> Result<Value, RequestError> {
    refuse(body, &["cachedContent", "safetySettings"], "gemini")?;
    let mut messages = Vec::new();
    if let Some(system) = body
        .get("systemInstruction")
        .or_else(|| body.get("system_instruction"))
        .filter(|v| !v.is_null())
    {
        let parts = system.get("parts").unwrap_or(system);
        messages.push(
            json!({"role": "system", "content": text_of_blocks(parts, "systemInstruction")?}),
        );
    }
    let contents = match body.get("contents") {
        Some(Value::Array(contents)) => contents.clone(),
        Some(Value::Object(one)) => vec![Value::Object(one.clone())],
        _ => return Err(invalid("contents must be an array of contents")),
    };
    let mut pending: Vec<(String, String)> = Vec::new(); // (name, id) of unanswered calls
    let mut next_call = 0;
    for (at, content) in contents.iter().enumerate() {
        let role = content["role"].as_str().unwrap_or("user");
        let parts = content["parts"]
            .as_array()
            .ok_or_else(|| invalid(format!("contents[{at}].parts must be an array")))?;
        let mut user_parts = Vec::new();
        let mut text = String::new();
        let mut reasoning = String::new();
        let mut calls = Vec::new();
        for part in parts {
            if let Some(call) = part.get("functionCall") {
                let name = call["name"].as_str().unwrap_or_default().to_owned();
                let id = call["id"].as_str().map_or_else(
                    || {
                        next_call += 1;
                        format!("call_{next_call}")
                    },
                    str::to_owned,
                );
                pending.push((name.clone(), id.clone()));
                let mut tool_call = json!({"id": id, "type": "function",
                    "function": {"name": name, "arguments": call.get("args").unwrap_or(&json!({})).to_string()}});
                if let Some(signature) = part.get("thoughtSignature").and_then(Value::as_str) {
                    tool_call["extra_content"] =
                        json!({"google": {"thought_signature": signature}});
                }
                calls.push(tool_call);
            } else if let Some(response) = part.get("functionResponse") {
                let name = response["name"].as_str().unwrap_or_default();
                let id = match response["id"].as_str() {
                    Some(id) => {
                        pending.retain(|(_, p)| p != id);
                        id.to_owned()
                    }
                    None => match pending.iter().position(|(n, _)| n == name) {
                        Some(i) => pending.remove(i).1,
                        None => {
                            return Err(invalid(format!(
                                "contents[{at}]: functionResponse {name:?} answers no earlier functionCall"
                            )));
                        }
                    },
                };
                let output = response.get("response").cloned().unwrap_or(Value::Null);
                messages.push(
                    json!({"role": "tool", "tool_call_id": id, "content": output.to_string()}),
                );
            } else if let Some(t) = part.get("text").and_then(Value::as_str) {
                if part["thought"] == true {
                    reasoning.push_str(t);
                } else if role == "model" {
                    text.push_str(t);
                } else {
                    user_parts.push(json!({"type": "text", "text": t}));
                }
            } else if let Some(data) = part.get("inlineData").or_else(|| part.get("inline_data")) {
                let mime = data
                    .get("mimeType")
                    .or_else(|| data.get("mime_type"))
                    .and_then(Value::as_str)
                    .unwrap_or("application/octet-stream");
                user_parts.push(json!({"type": "image_url", "image_url": {"url": format!("data:{mime};base64,{}", data["data"].as_str().unwrap_or_default())}}));
            } else if let Some(file) = part.get("fileData").or_else(|| part.get("file_data")) {
                let uri = file
                    .get("fileUri")
                    .or_else(|| file.get("file_uri"))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                user_parts.push(json!({"type": "image_url", "image_url": {"url": uri}}));
            } else {
                return Err(RequestError::bad_request(
                    "unsupported_parameter",
                    format!(
                        "contents[{at}]: this part cannot be translated: {}",
                        Value::Object(part.as_object().cloned().unwrap_or_default())
                            .to_string()
                            .chars()
                            .take(80)
                            .collect::<String>()
                    ),
                ));
            }
        }
        match role {
            "model" => {
                if text.is_empty() && reasoning.is_empty() && calls.is_empty() {
                    continue;
                }
                let mut message = json!({"role": "assistant", "content": if text.is_empty() { Value::Null } else { text.into() }});
                if !reasoning.is_empty() {
                    message["reasoning_content"] = reasoning.into();
                }
                if !calls.is_empty() {
                    message["tool_calls"] = calls.into();
                }
                messages.push(message);
            }
            "user" | "function" | "tool" => {
                if !calls.is_empty() || !text.is_empty() {
                    return Err(invalid(format!(
                        "contents[{at}]: a {role} turn cannot hold model output"
                    )));
                }
                if !user_parts.is_empty() {
                    messages.push(json!({"role": "user", "content": user_parts}));
                }
            }
            other => {
                return Err(invalid(format!(
                    "contents[{at}].role {other:?} is not user or model"
                )));
            }
        }
    }
    let mut chat = Map::new();
    chat.insert("messages".into(), messages.into());
    let config = body
        .get("generationConfig")
        .or_else(|| body.get("generation_config"))
        .cloned()
        .unwrap_or(Value::Null);
    for (from, to) in [
        ("maxOutputTokens", "max_tokens"),
        ("temperature", "temperature"),
        ("topP", "top_p"),
        ("stopSequences", "stop"),
        ("seed", "seed"),
        ("presencePenalty", "presence_penalty"),
        ("frequencyPenalty", "frequency_penalty"),
    ] {
        if let Some(value) = config.get(from).filter(|v| !v.is_null()) {
            chat.insert(to.into(), value.clone());
        }
    }
    // One candidate is what a Gemini client gets back through the standard stream.
    if config
        .get("candidateCount")
        .and_then(Value::as_u64)
        .is_some_and(|n| n > 1)
    {
        return Err(RequestError::bad_request(
            "unsupported_parameter",
            "generationConfig.candidateCount above 1 cannot be translated: remove it",
        ));
    }
    if config.get("topK").is_some_and(|v| !v.is_null()) {
        return Err(RequestError::bad_request(
            "unsupported_parameter",
            "generationConfig.topK cannot be translated: remove it",
        ));
    }
    let schema = config
        .get("responseJsonSchema")
        .or_else(|| config.get("responseSchema"))
        .filter(|v| v.is_object());
    match (config["responseMimeType"].as_str(), schema) {
        (_, Some(schema)) => {
            chat.insert("response_format".into(), json!({"type": "json_schema", "json_schema": {"name": "response", "schema": schema}}));
        }
        (Some("application/json"), None) => {
            chat.insert("response_format".into(), json!({"type": "json_object"}));
        }
        _ => {}
    }
    if let Some(thinking) = config.get("thinkingConfig").filter(|v| v.is_object()) {
        match thinking["thinkingBudget"].as_i64() {
            Some(0) => {}
            Some(budget) if budget > 0 => {
                chat.insert(
                    "thinking".into(),
                    json!({"type": "enabled", "budget_tokens": budget}),
                );
            }
            _ => {
                if let Some(level) = thinking["thinkingLevel"].as_str() {
                    chat.insert("reasoning_effort".into(), level.to_ascii_lowercase().into());
                }
            }
        }
    }
    let mut tools = Vec::new();
    for tool in body
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(declarations) = tool
            .get("functionDeclarations")
            .or_else(|| tool.get("function_declarations"))
            .and_then(Value::as_array)
        else {
            return Err(RequestError::bad_request(
                "unsupported_parameter",
                "tools: only functionDeclarations can be translated (not googleSearch, codeExecution, …)",
            ));
        };
        for declaration in declarations {
            let parameters = declaration
                .get("parametersJsonSchema")
                .or_else(|| declaration.get("parameters"))
                .cloned()
                .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
            let mut function =
                json!({"name": declaration["name"], "parameters": lower_types(parameters)});
            if let Some(description) = declaration.get("description").filter(|d| d.is_string()) {
                function["description"] = description.clone();
            }
            tools.push(json!({"type": "function", "function": function}));
        }
    }
    if !tools.is_empty() {
        chat.insert("tools".into(), tools.into());
    }
    if let Some(config) = body
        .get("toolConfig")
        .and_then(|c| c.get("functionCallingConfig"))
    {
        let allowed = config["allowedFunctionNames"]
            .as_array()
            .filter(|a| a.len() == 1);
        let choice = match (config["mode"].as_str(), allowed) {
            (Some("ANY"), Some(one)) => json!({"type": "function", "function": {"name": one[0]}}),
            (Some("ANY"), None) => json!("required"),
            (Some("NONE"), _) => json!("none"),
            _ => json!("auto"),
        };
        chat.insert("tool_choice".into(), choice);
    }
    Ok(Value::Object(chat))
}

/// Gemini's OpenAPI schema types are upper case (`OBJECT`); JSON Schema's are lower case.
fn lower_types(mut schema: Value) -> Value {
    match &mut schema {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                if key == "type" {
                    if let Value::String(t) = value {
                        *t = t.to_ascii_lowercase();
                    }
                } else {
                    *value = lower_types(std::mem::take(value));
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                *item = lower_types(std::mem::take(item));
            }
        }
        _ => {}
    }
    schema
}
