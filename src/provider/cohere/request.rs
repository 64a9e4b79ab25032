//! OpenAI chat request → Cohere v2 chat request.

use crate::provider::RequestError;
use crate::provider::request::{
    ChatRequest, Message, Part, ResponseFormat, ToolChoice, put, unsupported,
};
use serde_json::{Map, Value, json};

/// The v2 chat endpoint (bearer auth).
pub(crate) fn url(base: &str) -> String {
    format!("{base}/chat")
}

fn content(parts: &[Part]) -> Value {
    match parts {
        [Part::Text(text)] => text.clone().into(),
        parts => parts
            .iter()
            .map(|part| match part {
                Part::Text(text) => json!({"type": "text", "text": text}),
                Part::Image(url) => json!({"type": "image_url", "image_url": {"url": url}}),
            })
            .collect::<Vec<_>>()
            .into(),
    }
}

pub(crate) fn cohere(request: &ChatRequest<'_>, model: &str) -> Result<Value, RequestError> {
    request.refuse_unsupported("cohere", false, &[])?;
    let mut messages = Vec::with_capacity(request.messages.len());
    for message in &request.messages {
        messages.push(match message {
            Message::System(text) => json!({"role": "system", "content": text}),
            Message::User(parts) => json!({"role": "user", "content": content(parts)}),
            Message::Assistant {
                parts, tool_calls, ..
            } => {
                let mut out = Map::new();
                out.insert("role".into(), "assistant".into());
                if parts.iter().any(|p| !matches!(p, Part::Text(t) if t.is_empty())) {
                    out.insert("content".into(), content(parts));
                }
                if !tool_calls.is_empty() {
                    let calls: Vec<Value> = tool_calls
                        .iter()
                        .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
                        .collect();
                    out.insert("tool_calls".into(), calls.into());
                }
                Value::Object(out)
            }
            Message::Tool {
                tool_call_id,
                content,
            } => json!({"role": "tool", "tool_call_id": tool_call_id, "content": content}),
        });
    }
    let mut out = Map::new();
    out.insert("model".into(), model.into());
    out.insert("messages".into(), messages.into());
    out.insert("stream".into(), true.into());
    put(&mut out, "max_tokens", request.max_tokens);
    put(&mut out, "temperature", request.temperature);
    put(&mut out, "p", request.top_p);
    if let Some(thinking) = &request.thinking {
        let budget = thinking.budget();
        out.insert(
            "thinking".into(),
            if budget > 0 {
                json!({"type": "enabled", "token_budget": budget})
            } else {
                json!({"type": "disabled"})
            },
        );
    }
    if !request.stop.is_empty() {
        out.insert("stop_sequences".into(), request.stop.clone().into());
    }
    out.extend(
        request
            .sampling_extras()
            .map(|(key, value)| (key.to_owned(), value)),
    );
    match &request.response_format {
        Some(ResponseFormat::JsonObject) => {
            out.insert("response_format".into(), json!({"type": "json_object"}));
        }
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            out.insert(
                "response_format".into(),
                json!({"type": "json_object", "json_schema": schema}),
            );
        }
        Some(ResponseFormat::Text) | None => {}
    }
    if !request.tools.is_empty() {
        // Cohere cannot force one named function: offering only that one and requiring a
        // call says the same.
        let only = match &request.tool_choice {
            Some(ToolChoice::Function(name)) => {
                if !request.tools.iter().any(|f| &f.name == name) {
                    return Err(unsupported(
                        "cohere",
                        format!("tool_choice {name:?} (not in tools)"),
                    ));
                }
                Some(name.as_str())
            }
            _ => None,
        };
        let tools: Vec<Value> = request
            .tools
            .iter()
            .filter(|f| only.is_none_or(|name| f.name == name))
            .map(|f| f.openai_tool())
            .collect();
        out.insert("tools".into(), tools.into());
        match &request.tool_choice {
            Some(ToolChoice::Required | ToolChoice::Function(_)) => {
                out.insert("tool_choice".into(), "REQUIRED".into());
            }
            Some(ToolChoice::None) => {
                out.insert("tool_choice".into(), "NONE".into());
            }
            Some(ToolChoice::Auto) | None => {}
        }
    }
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::request::ChatRequest;

    fn translate(body: Value) -> Result<Value, RequestError> {
        let Value::Object(map) = body else { panic!() };
        cohere(&ChatRequest::parse(&map)?, "command-a-03-2025")
    }

    #[test]
    fn a_tool_conversation() {
        let out = translate(json!({
            "max_tokens": 10, "top_p": 0.5, "stop": "##", "seed": 1,
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Look"}, {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]},
                {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "ok"}
            ],
            "tools": [
                {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}},
                {"type": "function", "function": {"name": "g", "description": "G", "parameters": {"type": "object"}}}
            ],
            "tool_choice": {"type": "function", "function": {"name": "g"}}
        }))
        .unwrap();
        assert_eq!(
            out,
            json!({
                "model": "command-a-03-2025",
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": [{"type": "text", "text": "Look"}, {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]},
                    {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                    {"role": "tool", "tool_call_id": "c1", "content": "ok"}
                ],
                "stream": true, "max_tokens": 10, "p": 0.5, "stop_sequences": ["##"], "seed": 1,
                "tools": [{"type": "function", "function": {"name": "g", "description": "G", "parameters": {"type": "object"}}}],
                "tool_choice": "REQUIRED"
            })
        );
        assert!(
            translate(json!({"messages": [{"role": "user", "content": "x"}], "n": 3})).is_err()
        );
    }
}
