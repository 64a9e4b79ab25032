//! An Anthropic Messages request read as the standard (OpenAI chat) request.

use crate::provider::RequestError;
use crate::provider::client::{invalid, refuse, text_of_blocks};
use serde_json::{Map, Value, json};

/// The chat request for an Anthropic Messages request body.
pub(crate) fn chat_request(body: &Map<String, Value>) -> Result<Value, RequestError> {
    refuse(
        body,
        &["top_k", "container", "mcp_servers", "service_tier"],
        "anthropic",
    )?;
    let mut messages = Vec::new();
    match body.get("system") {
        None | Some(Value::Null) => {}
        Some(system) => {
            messages.push(json!({"role": "system", "content": text_of_blocks(system, "system")?}))
        }
    }
    let Some(Value::Array(turns)) = body.get("messages") else {
        return Err(invalid("messages must be an array of messages"));
    };
    for (at, turn) in turns.iter().enumerate() {
        let role = turn["role"].as_str().unwrap_or_default();
        let blocks: Vec<Value> = match &turn["content"] {
            Value::String(text) => vec![json!({"type": "text", "text": text})],
            Value::Array(blocks) => blocks.clone(),
            _ => {
                return Err(invalid(format!(
                    "messages[{at}].content must be a string or an array of content blocks"
                )));
            }
        };
        match role {
            "user" => user_turn(&blocks, at, &mut messages)?,
            "assistant" => messages.push(assistant_turn(&blocks, at)?),
            other => {
                return Err(invalid(format!(
                    "messages[{at}].role {other:?} is not user or assistant"
                )));
            }
        }
    }
    let mut chat = Map::new();
    chat.insert("messages".into(), messages.into());
    let max_tokens = body
        .get("max_tokens")
        .and_then(Value::as_u64)
        .ok_or_else(|| invalid("max_tokens must be a positive integer"))?;
    chat.insert("max_tokens".into(), max_tokens.into());
    for key in ["temperature", "top_p", "stream"] {
        if let Some(value) = body.get(key).filter(|v| !v.is_null()) {
            chat.insert(key.into(), value.clone());
        }
    }
    if let Some(stop) = body.get("stop_sequences").filter(|v| !v.is_null()) {
        chat.insert("stop".into(), stop.clone());
    }
    if let Some(Value::Array(tools)) = body.get("tools") {
        let mut out = Vec::new();
        for (at, tool) in tools.iter().enumerate() {
            if tool
                .get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| t != "custom")
            {
                return Err(RequestError::bad_request(
                    "unsupported_parameter",
                    format!(
                        "tools[{at}]: server tools ({}) cannot be translated; only custom tools with an input_schema",
                        tool["type"]
                    ),
                ));
            }
            let mut function = json!({"name": tool["name"], "parameters": tool.get("input_schema").cloned().unwrap_or_else(|| json!({"type": "object"}))});
            if let Some(description) = tool.get("description").filter(|d| d.is_string()) {
                function["description"] = description.clone();
            }
            out.push(json!({"type": "function", "function": function}));
        }
        chat.insert("tools".into(), out.into());
    }
    if let Some(choice) = body.get("tool_choice").filter(|v| !v.is_null()) {
        let choice = match choice["type"].as_str() {
            Some("auto") => json!("auto"),
            Some("any") => json!("required"),
            Some("none") => json!("none"),
            Some("tool") => json!({"type": "function", "function": {"name": choice["name"]}}),
            _ => return Err(invalid("tool_choice.type must be auto, any, tool or none")),
        };
        chat.insert("tool_choice".into(), choice);
    }
    if let Some(thinking) = body.get("thinking").filter(|v| !v.is_null()) {
        match thinking["type"].as_str() {
            Some("enabled") => {
                chat.insert(
                    "thinking".into(),
                    json!({"type": "enabled", "budget_tokens": thinking["budget_tokens"]}),
                );
            }
            Some("disabled") => {}
            _ => return Err(invalid("thinking.type must be enabled or disabled")),
        }
    }
    if let Some(user) = body
        .get("metadata")
        .and_then(|m| m.get("user_id"))
        .filter(|u| u.is_string())
    {
        chat.insert("user".into(), user.clone());
    }
    Ok(Value::Object(chat))
}

/// A user turn: text and images become one user message; each `tool_result` a tool message.
fn user_turn(blocks: &[Value], at: usize, messages: &mut Vec<Value>) -> Result<(), RequestError> {
    let mut parts = Vec::new();
    for block in blocks {
        match block["type"].as_str() {
            Some("text") => parts.push(json!({"type": "text", "text": block["text"]})),
            Some("image") => parts.push(json!({"type": "image_url", "image_url": {"url": image_url(&block["source"], at)?}})),
            Some("tool_result") => {
                let content = match &block["content"] {
                    Value::Null => String::new(),
                    content => text_of_blocks(content, &format!("messages[{at}] tool_result"))?,
                };
                let content = if block["is_error"] == true { format!("Error: {content}") } else { content };
                messages.push(json!({"role": "tool", "tool_call_id": block["tool_use_id"], "content": content}));
            }
            other => return Err(unsupported_block(other, at)),
        }
    }
    if !parts.is_empty() {
        messages.push(json!({"role": "user", "content": parts}));
    }
    Ok(())
}

fn assistant_turn(blocks: &[Value], at: usize) -> Result<Value, RequestError> {
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut signature = None;
    let mut calls = Vec::new();
    for block in blocks {
        match block["type"].as_str() {
            Some("text") => text.push_str(block["text"].as_str().unwrap_or_default()),
            Some("thinking") => {
                reasoning.push_str(block["thinking"].as_str().unwrap_or_default());
                if let Some(s) = block["signature"].as_str().filter(|s| !s.is_empty()) {
                    signature = Some(s.to_owned());
                }
            }
            Some("tool_use") => calls.push(json!({"id": block["id"], "type": "function",
                "function": {"name": block["name"], "arguments": block.get("input").unwrap_or(&json!({})).to_string()}})),
            other => return Err(unsupported_block(other, at)),
        }
    }
    let mut message = json!({"role": "assistant", "content": if text.is_empty() { Value::Null } else { text.into() }});
    if !reasoning.is_empty() {
        message["reasoning_content"] = reasoning.into();
    }
    if let Some(signature) = signature {
        message["reasoning_signature"] = signature.into();
    }
    if !calls.is_empty() {
        message["tool_calls"] = calls.into();
    }
    Ok(message)
}

fn image_url(source: &Value, at: usize) -> Result<String, RequestError> {
    match source["type"].as_str() {
        Some("base64") => Ok(format!(
            "data:{};base64,{}",
            source["media_type"]
                .as_str()
                .unwrap_or("application/octet-stream"),
            source["data"].as_str().unwrap_or_default()
        )),
        Some("url") => Ok(source["url"].as_str().unwrap_or_default().to_owned()),
        _ => Err(invalid(format!(
            "messages[{at}]: an image source must be base64 or url"
        ))),
    }
}

fn unsupported_block(kind: Option<&str>, at: usize) -> RequestError {
    RequestError::bad_request(
        "unsupported_parameter",
        format!(
            "messages[{at}]: content block type {:?} cannot be translated",
            kind.unwrap_or("(none)")
        ),
    )
}
