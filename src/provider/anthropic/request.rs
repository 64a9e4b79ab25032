//! OpenAI chat request → Anthropic Messages request.

use crate::provider::RequestError;
use crate::provider::request::{
    ChatRequest, Message, Part, ResponseFormat, Thinking, ToolChoice, data_url, push_turn, put,
    unsupported,
};
use serde_json::{Map, Value, json};

/// The API version every request names.
const VERSION: &str = "2023-06-01";

/// The Messages endpoint.
pub(crate) fn url(base: &str) -> String {
    format!("{base}/messages")
}

/// `x-api-key` and `anthropic-version` (the version is sent without a key too: a gateway in
/// front may hold the key).
pub(crate) fn auth(
    head: http::request::Builder,
    provider: &str,
    key: Option<&crate::provider::ApiKey>,
) -> Result<http::request::Builder, RequestError> {
    let head = head.header("anthropic-version", VERSION);
    Ok(match key {
        Some(key) => head.header(
            "x-api-key",
            crate::provider::request::secret_header(provider, key.expose().to_owned())?,
        ),
        None => head,
    })
}

/// Anthropic requires `max_tokens`; OpenAI's is unbounded, so a generous default.
const DEFAULT_MAX_TOKENS: u64 = 4096;

fn image(url: &str) -> Value {
    match data_url(url) {
        Some((media_type, data)) => json!({
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data}
        }),
        None => json!({"type": "image", "source": {"type": "url", "url": url}}),
    }
}

fn blocks(parts: &[Part]) -> impl Iterator<Item = Value> + '_ {
    parts.iter().filter_map(|part| match part {
        // Anthropic refuses empty text blocks.
        Part::Text(text) if text.is_empty() => None,
        Part::Text(text) => Some(json!({"type": "text", "text": text})),
        Part::Image(url) => Some(image(url)),
    })
}

/// A turn of the conversation (merged with the previous one of the same role).
fn push(messages: &mut Vec<Value>, role: &str, blocks: Vec<Value>) {
    push_turn(messages, role, "content", blocks);
}

pub(crate) fn anthropic(request: &ChatRequest<'_>, model: &str) -> Result<Value, RequestError> {
    request.refuse_unsupported(
        "anthropic",
        false,
        &["seed", "frequency_penalty", "presence_penalty"],
    )?;
    if matches!(
        request.response_format,
        Some(ResponseFormat::JsonObject | ResponseFormat::JsonSchema { .. })
    ) {
        return Err(unsupported("anthropic", "response_format"));
    }
    let mut system = Vec::new();
    let mut messages = Vec::new();
    for message in &request.messages {
        match message {
            Message::System(text) => system.push(text.as_str()),
            Message::User(parts) => push(&mut messages, "user", blocks(parts).collect()),
            Message::Assistant {
                parts,
                tool_calls,
                reasoning,
            } => {
                // Anthropic takes thinking back only with its signature (it verifies it).
                let mut content: Vec<Value> = reasoning
                    .iter()
                    .filter_map(|r| {
                        let signature = r.signature.as_deref()?;
                        Some(
                            json!({"type": "thinking", "thinking": r.text, "signature": signature}),
                        )
                    })
                    .collect();
                content.extend(blocks(parts));
                for call in tool_calls {
                    content.push(json!({
                        "type": "tool_use",
                        "id": call.id,
                        "name": call.name,
                        "input": call.arguments_object()?,
                    }));
                }
                push(&mut messages, "assistant", content);
            }
            Message::Tool {
                tool_call_id,
                content,
            } => push(
                &mut messages,
                "user",
                vec![
                    json!({"type": "tool_result", "tool_use_id": tool_call_id, "content": content}),
                ],
            ),
        }
    }
    let mut out = Map::new();
    out.insert("model".into(), model.into());
    let budget = request.thinking.as_ref().map_or(0, Thinking::budget);
    // Thinking needs room beyond its budget: without a client limit, the default on top.
    let max_tokens = request
        .max_tokens
        .unwrap_or(DEFAULT_MAX_TOKENS.max(budget + DEFAULT_MAX_TOKENS));
    out.insert("max_tokens".into(), max_tokens.into());
    if budget > 0 {
        out.insert(
            "thinking".into(),
            json!({"type": "enabled", "budget_tokens": budget.max(1024)}),
        );
    }
    out.insert("messages".into(), messages.into());
    if !system.is_empty() {
        out.insert("system".into(), system.join("\n\n").into());
    }
    out.insert("stream".into(), true.into());
    put(&mut out, "temperature", request.temperature);
    put(&mut out, "top_p", request.top_p);
    if !request.stop.is_empty() {
        out.insert("stop_sequences".into(), request.stop.clone().into());
    }
    let no_parallel = request.body.get("parallel_tool_calls") == Some(&Value::Bool(false));
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|f| f.declaration("input_schema"))
            .collect();
        out.insert("tools".into(), tools.into());
        let mut choice = match &request.tool_choice {
            None | Some(ToolChoice::Auto) => json!({"type": "auto"}),
            Some(ToolChoice::None) => json!({"type": "none"}),
            Some(ToolChoice::Required) => json!({"type": "any"}),
            Some(ToolChoice::Function(name)) => json!({"type": "tool", "name": name}),
        };
        if no_parallel && choice["type"] != "none" {
            choice["disable_parallel_tool_use"] = true.into();
        }
        if request.tool_choice.is_some() || no_parallel {
            out.insert("tool_choice".into(), choice);
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
        anthropic(&ChatRequest::parse(&map)?, "claude-sonnet-4-5")
    }

    #[test]
    fn a_tool_conversation() {
        let out = translate(json!({
            "model": "anthropic/claude-sonnet-4-5",
            "stream": true,
            "max_completion_tokens": 300,
            "temperature": 0.2,
            "top_p": 0.9,
            "stop": "END",
            "parallel_tool_calls": false,
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": "Use tools."},
                {"role": "user", "content": [
                    {"type": "text", "text": "Weather in Paris and Rome? See"},
                    {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
                ]},
                {"role": "assistant", "content": "", "tool_calls": [
                    {"id": "toolu_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}},
                    {"id": "toolu_2", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Rome\"}"}}
                ]},
                {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
                {"role": "tool", "tool_call_id": "toolu_2", "content": "24C"},
                {"role": "user", "content": "Thanks"}
            ],
            "tools": [{"type": "function", "function": {"name": "weather", "description": "Weather now", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
            "tool_choice": "required"
        }))
        .unwrap();
        assert_eq!(
            out,
            json!({
                "model": "claude-sonnet-4-5",
                "max_tokens": 300,
                "messages": [
                    {"role": "user", "content": [
                        {"type": "text", "text": "Weather in Paris and Rome? See"},
                        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/"}},
                        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}
                    ]},
                    {"role": "assistant", "content": [
                        {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}},
                        {"type": "tool_use", "id": "toolu_2", "name": "weather", "input": {"city": "Rome"}}
                    ]},
                    {"role": "user", "content": [
                        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                        {"type": "tool_result", "tool_use_id": "toolu_2", "content": "24C"},
                        {"type": "text", "text": "Thanks"}
                    ]}
                ],
                "system": "Be brief.\n\nUse tools.",
                "stream": true,
                "temperature": 0.2,
                "top_p": 0.9,
                "stop_sequences": ["END"],
                "tools": [{"name": "weather", "description": "Weather now", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
                "tool_choice": {"type": "any", "disable_parallel_tool_use": true}
            })
        );
    }

    #[test]
    fn defaults_and_refusals() {
        let out = translate(
            json!({"messages": [{"role": "user", "content": "hi"}], "n": 1, "presence_penalty": 0}),
        )
        .unwrap();
        assert_eq!(out["max_tokens"], 4096);
        assert!(out.get("tool_choice").is_none() && out.get("system").is_none());
        for (extra, needle) in [
            (json!({"n": 2}), "n > 1"),
            (json!({"seed": 7}), "seed"),
            (json!({"logprobs": true}), "logprobs"),
            (
                json!({"response_format": {"type": "json_object"}}),
                "response_format",
            ),
            (json!({"modalities": ["text", "audio"]}), "modalities"),
        ] {
            let mut body = json!({"messages": [{"role": "user", "content": "hi"}]});
            body.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            let error = translate(body).unwrap_err();
            assert_eq!(error.code, "unsupported_parameter");
            assert!(error.message.contains(needle), "{}", error.message);
            assert!(error.message.contains("anthropic"), "{}", error.message);
        }
    }
}
