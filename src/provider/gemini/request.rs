//! OpenAI chat request → Gemini `generateContent` request.

use crate::provider::RequestError;
use crate::provider::request::{
    ChatRequest, Message, Part, ResponseFormat, ToolChoice, data_url, push_turn, put,
};
use serde_json::{Map, Value, json};

/// The streaming endpoint of a model (`gemini-2.5-pro` or `models/gemini-2.5-pro`); a name
/// that could leave the path is refused.
pub(crate) fn url(base: &str, model: &str) -> Result<String, RequestError> {
    let model = model.strip_prefix("models/").unwrap_or(model);
    if !model
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    {
        return Err(RequestError::bad_request(
            "invalid_model",
            format!("{model:?} is not a Gemini model name"),
        ));
    }
    Ok(format!(
        "{base}/models/{model}:streamGenerateContent?alt=sse"
    ))
}

/// `x-goog-api-key`.
pub(crate) fn auth(
    head: http::request::Builder,
    provider: &str,
    key: &crate::provider::ApiKey,
) -> Result<http::request::Builder, RequestError> {
    Ok(head.header(
        "x-goog-api-key",
        crate::provider::request::secret_header(provider, key.expose().to_owned())?,
    ))
}

fn part(part: &Part) -> Value {
    match part {
        Part::Text(text) => json!({"text": text}),
        Part::Image(url) => match data_url(url) {
            Some((mime, data)) => json!({"inlineData": {"mimeType": mime, "data": data}}),
            None => json!({"fileData": {"fileUri": url}}),
        },
    }
}

/// A turn of the conversation (merged with the previous one of the same role: parallel
/// function responses belong in one turn).
fn push(contents: &mut Vec<Value>, role: &str, parts: Vec<Value>) {
    push_turn(contents, role, "parts", parts);
}

pub(crate) fn gemini(request: &ChatRequest<'_>) -> Result<Value, RequestError> {
    request.refuse_unsupported("gemini", true, &[])?;
    let mut system = Vec::new();
    let mut contents = Vec::new();
    for message in &request.messages {
        match message {
            Message::System(text) => system.push(json!({"text": text})),
            Message::User(parts) => push(&mut contents, "user", parts.iter().map(part).collect()),
            Message::Assistant {
                parts, tool_calls, ..
            } => {
                let mut out: Vec<Value> = parts
                    .iter()
                    .filter(|p| !matches!(p, Part::Text(t) if t.is_empty()))
                    .map(part)
                    .collect();
                for call in tool_calls {
                    let mut part = json!({"functionCall": {"name": call.name, "args": call.arguments_object()?}});
                    // Gemini 3 refuses a call of an earlier turn without its signature.
                    if let Some(signature) = &call.signature {
                        part["thoughtSignature"] = signature.clone().into();
                    }
                    out.push(part);
                }
                push(&mut contents, "model", out);
            }
            Message::Tool {
                tool_call_id,
                content,
            } => {
                let name = request.tool_name(tool_call_id).ok_or_else(|| {
                    RequestError::bad_request(
                        "invalid_request",
                        format!("tool result {tool_call_id:?} answers no tool call of an earlier assistant message"),
                    )
                })?;
                // The response must be an object: a JSON object result as is, else wrapped.
                let response = serde_json::from_str::<Value>(content)
                    .ok()
                    .filter(Value::is_object)
                    .unwrap_or_else(|| json!({"content": content}));
                push(
                    &mut contents,
                    "user",
                    vec![json!({"functionResponse": {"name": name, "response": response}})],
                );
            }
        }
    }
    let mut config = Map::new();
    put(&mut config, "maxOutputTokens", request.max_tokens);
    put(&mut config, "temperature", request.temperature);
    put(&mut config, "topP", request.top_p);
    if !request.stop.is_empty() {
        config.insert("stopSequences".into(), request.stop.clone().into());
    }
    if request.n > 1 {
        config.insert("candidateCount".into(), request.n.into());
    }
    if let Some(thinking) = &request.thinking {
        let budget = thinking.budget();
        config.insert(
            "thinkingConfig".into(),
            json!({"thinkingBudget": budget, "includeThoughts": budget > 0}),
        );
    }
    for (key, value) in request.sampling_extras() {
        let key = match key {
            "frequency_penalty" => "frequencyPenalty",
            "presence_penalty" => "presencePenalty",
            other => other,
        };
        config.insert(key.into(), value);
    }
    match &request.response_format {
        Some(ResponseFormat::JsonObject) => {
            config.insert("responseMimeType".into(), "application/json".into());
        }
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            config.insert("responseMimeType".into(), "application/json".into());
            config.insert("responseJsonSchema".into(), schema.clone());
        }
        Some(ResponseFormat::Text) | None => {}
    }
    let mut out = Map::new();
    out.insert("contents".into(), contents.into());
    if !system.is_empty() {
        out.insert("systemInstruction".into(), json!({"parts": system}));
    }
    if !config.is_empty() {
        out.insert("generationConfig".into(), Value::Object(config));
    }
    if !request.tools.is_empty() {
        let declarations: Vec<Value> = request
            .tools
            .iter()
            .map(|f| f.declaration("parametersJsonSchema"))
            .collect();
        out.insert(
            "tools".into(),
            json!([{"functionDeclarations": declarations}]),
        );
        if let Some(choice) = &request.tool_choice {
            let config = match choice {
                ToolChoice::Auto => json!({"mode": "AUTO"}),
                ToolChoice::None => json!({"mode": "NONE"}),
                ToolChoice::Required => json!({"mode": "ANY"}),
                ToolChoice::Function(name) => {
                    json!({"mode": "ANY", "allowedFunctionNames": [name]})
                }
            };
            out.insert(
                "toolConfig".into(),
                json!({"functionCallingConfig": config}),
            );
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
        gemini(&ChatRequest::parse(&map)?)
    }

    #[test]
    fn a_tool_conversation() {
        let out = translate(json!({
            "max_tokens": 50, "temperature": 0.5, "top_p": 0.8, "stop": ["x", "y"], "n": 2, "seed": 3,
            "response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "object"}}},
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Weather?"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}}]},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "{\"celsius\":18}"},
                {"role": "user", "content": "And?"}
            ],
            "tools": [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "additionalProperties": false}}}],
            "tool_choice": {"type": "function", "function": {"name": "weather"}}
        }))
        .unwrap();
        assert_eq!(
            out,
            json!({
                "contents": [
                    {"role": "user", "parts": [{"text": "Weather?"}, {"inlineData": {"mimeType": "image/png", "data": "iVBO"}}]},
                    {"role": "model", "parts": [{"functionCall": {"name": "weather", "args": {"city": "Paris"}}}]},
                    {"role": "user", "parts": [{"functionResponse": {"name": "weather", "response": {"celsius": 18}}}, {"text": "And?"}]}
                ],
                "systemInstruction": {"parts": [{"text": "Be brief."}]},
                "generationConfig": {
                    "maxOutputTokens": 50, "temperature": 0.5, "topP": 0.8, "stopSequences": ["x", "y"],
                    "candidateCount": 2, "seed": 3,
                    "responseMimeType": "application/json", "responseJsonSchema": {"type": "object"}
                },
                "tools": [{"functionDeclarations": [{"name": "weather", "parametersJsonSchema": {"type": "object", "properties": {"city": {"type": "string"}}, "additionalProperties": false}}]}],
                "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["weather"]}}
            })
        );
    }

    #[test]
    fn text_tool_results_are_wrapped_and_orphans_refused() {
        let out = translate(json!({"messages": [
            {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": ""}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "plain"}
        ]}))
        .unwrap();
        assert_eq!(
            out["contents"][1]["parts"][0]["functionResponse"]["response"],
            json!({"content": "plain"})
        );
        assert_eq!(
            out["contents"][0]["parts"][0]["functionCall"]["args"],
            json!({})
        );
        let error = translate(
            json!({"messages": [{"role": "tool", "tool_call_id": "zz", "content": "x"}]}),
        )
        .unwrap_err();
        assert!(error.message.contains("\"zz\""), "{}", error.message);
    }
}
