//! OpenAI chat request → Bedrock Converse request (`POST /model/{modelId}/converse-stream`).

use crate::provider::RequestError;
use crate::provider::request::{
    ChatRequest, Message, Part, ResponseFormat, Thinking, ToolChoice, data_url, push_turn,
    unsupported,
};
use serde_json::{Map, Value, json};

/// The ConverseStream endpoint of a model: model ids have `:`
/// (`anthropic.claude-3-5-haiku-20241022-v1:0`) and ARNs `/`, so the id is percent-encoded.
/// Auth is the SigV4 signature, added once the body is known.
pub(crate) fn url(base: &str, model: &str) -> String {
    let model = percent_encoding::utf8_percent_encode(model, percent_encoding::NON_ALPHANUMERIC);
    format!("{base}/model/{model}/converse-stream")
}

/// What ConverseStream streams.
pub(crate) const STREAM_CONTENT_TYPE: &str = "application/vnd.amazon.eventstream";

/// A content block of a user or assistant turn. Converse takes images as bytes only (a
/// `data:` URL), in `png`, `jpeg`, `gif` or `webp`.
fn block(part: &Part) -> Result<Option<Value>, RequestError> {
    Ok(match part {
        // Converse refuses empty text blocks.
        Part::Text(text) if text.is_empty() => None,
        Part::Text(text) => Some(json!({"text": text})),
        Part::Image(url) => {
            let Some((media_type, data)) = data_url(url) else {
                return Err(unsupported("bedrock", "an image by URL (send a data: URL)"));
            };
            let format = match media_type {
                "image/png" => "png",
                "image/jpeg" | "image/jpg" => "jpeg",
                "image/gif" => "gif",
                "image/webp" => "webp",
                other => {
                    return Err(unsupported(
                        "bedrock",
                        format!("an image of type {other:?}"),
                    ));
                }
            };
            Some(json!({"image": {"format": format, "source": {"bytes": data}}}))
        }
    })
}

fn blocks(parts: &[Part]) -> Result<Vec<Value>, RequestError> {
    parts.iter().filter_map(|p| block(p).transpose()).collect()
}

pub(crate) fn bedrock(request: &ChatRequest<'_>) -> Result<Value, RequestError> {
    request.refuse_unsupported(
        "bedrock",
        false,
        &["seed", "frequency_penalty", "presence_penalty"],
    )?;
    if matches!(
        request.response_format,
        Some(ResponseFormat::JsonObject | ResponseFormat::JsonSchema { .. })
    ) {
        return Err(unsupported("bedrock", "response_format"));
    }
    let mut system = Vec::new();
    let mut messages = Vec::new();
    for message in &request.messages {
        match message {
            Message::System(text) => system.push(json!({"text": text})),
            Message::User(parts) => push_turn(&mut messages, "user", "content", blocks(parts)?),
            Message::Assistant {
                parts,
                tool_calls,
                reasoning,
            } => {
                // Claude on Bedrock takes its reasoning back only with the signature.
                let mut content: Vec<Value> = reasoning
                    .iter()
                    .filter_map(|r| {
                        let signature = r.signature.as_deref()?;
                        Some(json!({"reasoningContent": {"reasoningText": {"text": r.text, "signature": signature}}}))
                    })
                    .collect();
                content.extend(blocks(parts)?);
                for call in tool_calls {
                    content.push(json!({"toolUse": {
                        "toolUseId": call.id,
                        "name": call.name,
                        "input": call.arguments_object()?,
                    }}));
                }
                push_turn(&mut messages, "assistant", "content", content);
            }
            Message::Tool {
                tool_call_id,
                content,
            } => push_turn(
                &mut messages,
                "user",
                "content",
                vec![json!({"toolResult": {
                    "toolUseId": tool_call_id,
                    "content": [{"text": content}],
                }})],
            ),
        }
    }
    let mut out = Map::new();
    out.insert("messages".into(), messages.into());
    if !system.is_empty() {
        out.insert("system".into(), system.into());
    }
    let mut inference = Map::new();
    if let Some(max) = request.max_tokens {
        inference.insert("maxTokens".into(), max.into());
    }
    if let Some(t) = request.temperature {
        inference.insert("temperature".into(), t.into());
    }
    if let Some(p) = request.top_p {
        inference.insert("topP".into(), p.into());
    }
    if !request.stop.is_empty() {
        inference.insert("stopSequences".into(), request.stop.clone().into());
    }
    if !inference.is_empty() {
        out.insert("inferenceConfig".into(), inference.into());
    }
    // Thinking is a model field on Bedrock (Claude's shape).
    if let Some(budget) = request
        .thinking
        .as_ref()
        .map(Thinking::budget)
        .filter(|b| *b > 0)
    {
        out.insert(
            "additionalModelRequestFields".into(),
            json!({"thinking": {"type": "enabled", "budget_tokens": budget.max(1024)}}),
        );
    }
    // Converse has no "none": with tool_choice "none" the tools are not offered.
    if !request.tools.is_empty() && request.tool_choice != Some(ToolChoice::None) {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|f| {
                let mut spec = json!({"name": f.name, "inputSchema": {"json": f.parameters}});
                if let Some(description) = &f.description {
                    spec["description"] = description.clone().into();
                }
                json!({"toolSpec": spec})
            })
            .collect();
        let mut config = json!({"tools": tools});
        match &request.tool_choice {
            None | Some(ToolChoice::Auto | ToolChoice::None) => {}
            Some(ToolChoice::Required) => config["toolChoice"] = json!({"any": {}}),
            Some(ToolChoice::Function(name)) => {
                config["toolChoice"] = json!({"tool": {"name": name}});
            }
        }
        out.insert("toolConfig".into(), config);
    }
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn translate(body: Value) -> Result<Value, RequestError> {
        let Value::Object(map) = body else { panic!() };
        bedrock(&ChatRequest::parse(&map)?)
    }

    #[test]
    fn a_conversation_with_tools_becomes_converse() {
        let out = translate(json!({
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}}
                ]},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "look", "arguments": "{\"x\":1}"}}
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "a cat"}
            ],
            "max_tokens": 100, "temperature": 0.5, "top_p": 0.9, "stop": ["END"],
            "tools": [{"type": "function", "function": {"name": "look", "description": "Looks", "parameters": {"type": "object"}}}],
            "tool_choice": "required"
        }))
        .unwrap();
        assert_eq!(
            out,
            json!({
                "messages": [
                    {"role": "user", "content": [
                        {"text": "What is this?"},
                        {"image": {"format": "png", "source": {"bytes": "iVBORw0K"}}}
                    ]},
                    {"role": "assistant", "content": [
                        {"toolUse": {"toolUseId": "call_1", "name": "look", "input": {"x": 1}}}
                    ]},
                    {"role": "user", "content": [
                        {"toolResult": {"toolUseId": "call_1", "content": [{"text": "a cat"}]}}
                    ]}
                ],
                "system": [{"text": "Be brief."}],
                "inferenceConfig": {"maxTokens": 100, "temperature": 0.5, "topP": 0.9, "stopSequences": ["END"]},
                "toolConfig": {
                    "tools": [{"toolSpec": {"name": "look", "description": "Looks", "inputSchema": {"json": {"type": "object"}}}}],
                    "toolChoice": {"any": {}}
                }
            })
        );
    }

    #[test]
    fn what_converse_cannot_take_is_a_400_naming_it() {
        let image_url = translate(json!({"messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
        ]}]}))
        .unwrap_err();
        assert_eq!(image_url.code, "unsupported_parameter");
        assert!(
            image_url.message.contains("data: URL"),
            "{}",
            image_url.message
        );
        let seed = translate(json!({"messages": [{"role": "user", "content": "x"}], "seed": 1}))
            .unwrap_err();
        assert!(seed.message.contains("seed"), "{}", seed.message);
        let json_mode = translate(json!({"messages": [{"role": "user", "content": "x"}],
            "response_format": {"type": "json_object"}}))
        .unwrap_err();
        assert!(json_mode.message.contains("response_format"));
    }
}
