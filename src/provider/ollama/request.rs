//! OpenAI chat request → Ollama native `/api/chat` request.

use crate::provider::RequestError;
use crate::provider::request::{
    ChatRequest, Function, Message, Part, ResponseFormat, ToolChoice, data_url, put, unsupported,
};
use serde_json::{Map, Value, json};

/// The native chat endpoint (bearer auth when a key is set, for a gateway in front).
pub(crate) fn url(base: &str) -> String {
    format!("{base}/api/chat")
}

/// What the native API streams.
pub(crate) const STREAM_CONTENT_TYPE: &str = "application/x-ndjson";

fn text_and_images(parts: &[Part]) -> Result<(String, Vec<Value>), RequestError> {
    let mut text = String::new();
    let mut images = Vec::new();
    for part in parts {
        match part {
            Part::Text(t) => {
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(t);
            }
            Part::Image(url) => match data_url(url) {
                Some((_, data)) => images.push(data.into()),
                None => return Err(unsupported("ollama", "an image by URL (send a data: URL)")),
            },
        }
    }
    Ok((text, images))
}

pub(crate) fn ollama(request: &ChatRequest<'_>, model: &str) -> Result<Value, RequestError> {
    request.refuse_unsupported("ollama", false, &[])?;
    let mut messages = Vec::with_capacity(request.messages.len());
    for message in &request.messages {
        messages.push(match message {
            Message::System(text) => json!({"role": "system", "content": text}),
            Message::User(parts) => {
                let (text, images) = text_and_images(parts)?;
                let mut out = json!({"role": "user", "content": text});
                if !images.is_empty() {
                    out["images"] = images.into();
                }
                out
            }
            Message::Assistant {
                parts, tool_calls, ..
            } => {
                let (text, images) = text_and_images(parts)?;
                let mut out = json!({"role": "assistant", "content": text});
                if !images.is_empty() {
                    out["images"] = images.into();
                }
                if !tool_calls.is_empty() {
                    let calls = tool_calls
                        .iter()
                        .map(|c| Ok(json!({"function": {"name": c.name, "arguments": c.arguments_object()?}})))
                        .collect::<Result<Vec<_>, RequestError>>()?;
                    out["tool_calls"] = calls.into();
                }
                out
            }
            Message::Tool {
                tool_call_id,
                content,
            } => {
                let mut out = json!({"role": "tool", "content": content});
                if let Some(name) = request.tool_name(tool_call_id) {
                    out["tool_name"] = name.into();
                }
                out
            }
        });
    }
    let mut options = Map::new();
    put(&mut options, "num_predict", request.max_tokens);
    put(&mut options, "temperature", request.temperature);
    put(&mut options, "top_p", request.top_p);
    if !request.stop.is_empty() {
        options.insert("stop".into(), request.stop.clone().into());
    }
    options.extend(
        request
            .sampling_extras()
            .map(|(key, value)| (key.to_owned(), value)),
    );
    let mut out = Map::new();
    out.insert("model".into(), model.into());
    out.insert("messages".into(), messages.into());
    out.insert("stream".into(), true.into());
    if let Some(thinking) = &request.thinking {
        out.insert("think".into(), (thinking.budget() > 0).into());
    }
    match &request.tool_choice {
        Some(ToolChoice::Required) => {
            return Err(unsupported("ollama", "tool_choice \"required\""));
        }
        Some(ToolChoice::Function(_)) => {
            return Err(unsupported("ollama", "tool_choice naming a function"));
        }
        // No tools offered is how Ollama says none.
        Some(ToolChoice::None) => {}
        Some(ToolChoice::Auto) | None => {
            if !request.tools.is_empty() {
                let tools: Vec<Value> = request.tools.iter().map(Function::openai_tool).collect();
                out.insert("tools".into(), tools.into());
            }
        }
    }
    match &request.response_format {
        Some(ResponseFormat::JsonObject) => {
            out.insert("format".into(), "json".into());
        }
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            out.insert("format".into(), schema.clone());
        }
        Some(ResponseFormat::Text) | None => {}
    }
    if !options.is_empty() {
        out.insert("options".into(), Value::Object(options));
    }
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::request::ChatRequest;

    fn translate(body: Value) -> Result<Value, RequestError> {
        let Value::Object(map) = body else { panic!() };
        ollama(&ChatRequest::parse(&map)?, "llama3.2")
    }

    #[test]
    fn a_tool_conversation() {
        let out = translate(json!({
            "max_tokens": 64, "temperature": 0, "stop": ["\n\n"],
            "response_format": {"type": "json_object"},
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}}]},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "done"}
            ],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
        }))
        .unwrap();
        assert_eq!(
            out,
            json!({
                "model": "llama3.2",
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "What is this?", "images": ["iVBO"]},
                    {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "f", "arguments": {"a": 1}}}]},
                    {"role": "tool", "content": "done", "tool_name": "f"}
                ],
                "stream": true,
                "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
                "format": "json",
                "options": {"num_predict": 64, "temperature": 0.0, "stop": ["\n\n"]}
            })
        );
    }

    #[test]
    fn refusals() {
        let url_image = json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x"}}]}]});
        assert!(
            translate(url_image)
                .unwrap_err()
                .message
                .contains("data: URL")
        );
        let required = json!({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "required"});
        assert_eq!(
            translate(required).unwrap_err().code,
            "unsupported_parameter"
        );
        let none = json!({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "none"});
        assert!(translate(none).unwrap().get("tools").is_none());
    }
}
