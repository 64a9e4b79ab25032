//! The OpenAI chat request, read once into a typed view, and written out in each provider's
//! API. Each provider's `request` module only writes; reading and validating is shared here.

use super::RequestError;
use http::{HeaderValue, StatusCode};
use serde_json::{Map, Value};

/// One piece of a message's content.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Part {
    Text(String),
    /// An image by URL: `data:` URLs carry the bytes inline.
    Image(String),
}

/// A tool call made by the assistant in an earlier turn.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ToolCall {
    pub id: String,
    pub name: String,
    /// The arguments as the model wrote them: a JSON text.
    pub arguments: String,
    /// Gemini's `thoughtSignature` of the call, from `extra_content.google.thought_signature`.
    pub signature: Option<String>,
}

impl ToolCall {
    /// The arguments as a JSON object (what Anthropic, Gemini and Ollama want).
    pub(super) fn arguments_object(&self) -> Result<Value, RequestError> {
        if self.arguments.trim().is_empty() {
            return Ok(Value::Object(Map::new()));
        }
        serde_json::from_str::<Value>(&self.arguments)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| {
                RequestError::bad_request(
                    "invalid_tool_call",
                    format!(
                        "tool call {:?}: arguments must be a JSON object text",
                        self.id
                    ),
                )
            })
    }
}

/// One message of the conversation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Message {
    /// `system` or `developer`.
    System(String),
    User(Vec<Part>),
    Assistant {
        parts: Vec<Part>,
        tool_calls: Vec<ToolCall>,
        /// The turn's reasoning (`reasoning_content`) and its signature
        /// (`reasoning_signature`), which Anthropic needs back to continue a tool loop.
        reasoning: Option<Reasoning>,
    },
    Tool {
        tool_call_id: String,
        content: String,
    },
}

/// Reasoning an assistant turn carried, as the provider gave it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reasoning {
    pub text: String,
    pub signature: Option<String>,
}

/// How much the model may think: a token budget (`thinking.budget_tokens`, Anthropic's and
/// Gemini's way) or an effort (`reasoning_effort`, OpenAI's).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Thinking {
    Budget(u64),
    Effort(String),
}

impl Thinking {
    /// The token budget, an effort read as one (`minimal`/`none`: no thinking).
    pub(crate) fn budget(&self) -> u64 {
        match self {
            Thinking::Budget(n) => *n,
            Thinking::Effort(effort) => match effort.as_str() {
                "none" | "minimal" => 0,
                "low" => 1024,
                "high" => 16384,
                _ => 4096,
            },
        }
    }
}

/// A function the model may call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Function {
    pub name: String,
    pub description: Option<String>,
    /// JSON Schema of the arguments (an object schema).
    pub parameters: Value,
}

impl Function {
    /// `{"name", "description"?, <schema_key>: parameters}`: every API's function declaration,
    /// under its own name for the schema (`parameters`, `input_schema`, `parametersJsonSchema`).
    pub(super) fn declaration(&self, schema_key: &str) -> Value {
        let mut declaration = Map::new();
        declaration.insert("name".into(), self.name.clone().into());
        put(&mut declaration, "description", self.description.clone());
        declaration.insert(schema_key.into(), self.parameters.clone());
        Value::Object(declaration)
    }

    /// OpenAI's tool shape, which Cohere and Ollama take as is.
    pub(super) fn openai_tool(&self) -> Value {
        serde_json::json!({"type": "function", "function": self.declaration("parameters")})
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ToolChoice {
    Auto,
    None,
    Required,
    Function(String),
}

/// What the JSON schema of `response_format` asks for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ResponseFormat {
    Text,
    JsonObject,
    JsonSchema { name: String, schema: Value },
}

/// The OpenAI chat request, as far as translation needs it.
#[derive(Debug, Clone)]
pub(crate) struct ChatRequest<'a> {
    pub body: &'a Map<String, Value>,
    pub messages: Vec<Message>,
    pub max_tokens: Option<u64>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub stop: Vec<String>,
    pub tools: Vec<Function>,
    pub tool_choice: Option<ToolChoice>,
    pub response_format: Option<ResponseFormat>,
    pub n: u64,
    /// `thinking` (`{"type":"enabled","budget_tokens":N}`) or `reasoning_effort`.
    pub thinking: Option<Thinking>,
}

fn invalid(message: impl Into<String>) -> RequestError {
    RequestError::bad_request("invalid_request", message)
}

pub(crate) fn unsupported(provider: &str, what: impl std::fmt::Display) -> RequestError {
    RequestError::bad_request(
        "unsupported_parameter",
        format!("{what} is not supported by provider {provider:?}"),
    )
}

fn number(body: &Map<String, Value>, key: &str) -> Result<Option<f64>, RequestError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_f64()
            .map(Some)
            .ok_or_else(|| invalid(format!("{key} must be a number"))),
    }
}

fn count(body: &Map<String, Value>, key: &str) -> Result<Option<u64>, RequestError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| invalid(format!("{key} must be a non-negative integer"))),
    }
}

fn string<'v>(value: &'v Value, what: &str) -> Result<&'v str, RequestError> {
    value
        .as_str()
        .ok_or_else(|| invalid(format!("{what} must be a string")))
}

/// `content` of a message: a string, an array of parts, or null.
fn parts(content: Option<&Value>, at: usize) -> Result<Vec<Part>, RequestError> {
    match content {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(text)) => Ok(vec![Part::Text(text.clone())]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item.get("type").and_then(Value::as_str) {
                Some("text" | "input_text") => Ok(Part::Text(
                    string(&item["text"], &format!("messages[{at}] text part"))?.to_owned(),
                )),
                Some("image_url") => {
                    let url = item["image_url"].get("url").unwrap_or(&item["image_url"]);
                    Ok(Part::Image(
                        string(url, &format!("messages[{at}] image_url.url"))?.to_owned(),
                    ))
                }
                Some(other) => Err(RequestError::bad_request(
                    "unsupported_parameter",
                    format!("messages[{at}]: content part type {other:?} cannot be translated"),
                )),
                None => Err(invalid(format!(
                    "messages[{at}]: content part without a type"
                ))),
            })
            .collect(),
        Some(_) => Err(invalid(format!(
            "messages[{at}].content must be a string or an array of parts"
        ))),
    }
}

fn text_only(parts: Vec<Part>, at: usize, role: &str) -> Result<String, RequestError> {
    let mut text = String::new();
    for part in parts {
        match part {
            Part::Text(t) => {
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(&t);
            }
            Part::Image(_) => {
                return Err(invalid(format!(
                    "messages[{at}]: a {role} message cannot hold images"
                )));
            }
        }
    }
    Ok(text)
}

impl<'a> ChatRequest<'a> {
    /// Reads and validates an OpenAI chat completions request body.
    pub(super) fn parse(body: &'a Map<String, Value>) -> Result<Self, RequestError> {
        let Some(Value::Array(raw)) = body.get("messages") else {
            return Err(invalid("messages must be an array of messages"));
        };
        if raw.is_empty() {
            return Err(invalid("messages must not be empty"));
        }
        let mut messages = Vec::with_capacity(raw.len());
        for (at, message) in raw.iter().enumerate() {
            let role = message
                .get("role")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid(format!("messages[{at}].role must be a string")))?;
            let content = parts(message.get("content"), at)?;
            messages.push(match role {
                "system" | "developer" => Message::System(text_only(content, at, role)?),
                "user" => Message::User(content),
                "assistant" => {
                    let mut tool_calls = Vec::new();
                    for call in message
                        .get("tool_calls")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        let function = &call["function"];
                        tool_calls.push(ToolCall {
                            signature: call
                                .pointer("/extra_content/google/thought_signature")
                                .and_then(Value::as_str)
                                .map(str::to_owned),
                            id: string(&call["id"], &format!("messages[{at}] tool call id"))?
                                .to_owned(),
                            name: string(
                                &function["name"],
                                &format!("messages[{at}] tool call name"),
                            )?
                            .to_owned(),
                            arguments: match &function["arguments"] {
                                Value::String(s) => s.clone(),
                                Value::Null => String::new(),
                                other => other.to_string(),
                            },
                        });
                    }
                    let reasoning = message
                        .get("reasoning_content")
                        .and_then(Value::as_str)
                        .map(|text| Reasoning {
                            text: text.to_owned(),
                            signature: message
                                .get("reasoning_signature")
                                .and_then(Value::as_str)
                                .map(str::to_owned),
                        });
                    Message::Assistant {
                        parts: content,
                        tool_calls,
                        reasoning,
                    }
                }
                "tool" => Message::Tool {
                    tool_call_id: string(
                        message.get("tool_call_id").unwrap_or(&Value::Null),
                        &format!("messages[{at}].tool_call_id"),
                    )?
                    .to_owned(),
                    content: text_only(content, at, role)?,
                },
                other => {
                    return Err(invalid(format!(
                        "messages[{at}].role {other:?} is not one of system, developer, user, assistant, tool"
                    )));
                }
            });
        }
        let stop = match body.get("stop") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(items)) => items
                .iter()
                .map(|s| string(s, "stop").map(str::to_owned))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(invalid("stop must be a string or an array of strings")),
        };
        let mut tools = Vec::new();
        for (at, tool) in body
            .get("tools")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if tool.get("type").and_then(Value::as_str) != Some("function") {
                return Err(RequestError::bad_request(
                    "unsupported_parameter",
                    format!("tools[{at}]: only function tools can be translated"),
                ));
            }
            let function = &tool["function"];
            tools.push(Function {
                name: string(&function["name"], &format!("tools[{at}].function.name"))?.to_owned(),
                description: function["description"].as_str().map(str::to_owned),
                parameters: match &function["parameters"] {
                    Value::Null => serde_json::json!({"type": "object", "properties": {}}),
                    schema @ Value::Object(_) => schema.clone(),
                    _ => {
                        return Err(invalid(format!(
                            "tools[{at}].function.parameters must be a JSON schema object"
                        )));
                    }
                },
            });
        }
        let tool_choice = match body.get("tool_choice") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(match s.as_str() {
                "auto" => ToolChoice::Auto,
                "none" => ToolChoice::None,
                "required" => ToolChoice::Required,
                other => {
                    return Err(invalid(format!(
                        "tool_choice {other:?} is not auto, none or required"
                    )));
                }
            }),
            Some(choice) => Some(ToolChoice::Function(
                string(&choice["function"]["name"], "tool_choice.function.name")?.to_owned(),
            )),
        };
        let response_format = match body.get("response_format") {
            None | Some(Value::Null) => None,
            Some(format) => Some(match format.get("type").and_then(Value::as_str) {
                Some("text") => ResponseFormat::Text,
                Some("json_object") => ResponseFormat::JsonObject,
                Some("json_schema") => {
                    let spec = &format["json_schema"];
                    ResponseFormat::JsonSchema {
                        name: spec["name"].as_str().unwrap_or("response").to_owned(),
                        schema: spec
                            .get("schema")
                            .filter(|s| s.is_object())
                            .cloned()
                            .ok_or_else(|| {
                                invalid("response_format.json_schema.schema must be an object")
                            })?,
                    }
                }
                _ => {
                    return Err(invalid(
                        "response_format.type must be text, json_object or json_schema",
                    ));
                }
            }),
        };
        Ok(ChatRequest {
            body,
            messages,
            max_tokens: match count(body, "max_completion_tokens")? {
                Some(n) => Some(n),
                None => count(body, "max_tokens")?,
            },
            temperature: number(body, "temperature")?,
            top_p: number(body, "top_p")?,
            stop,
            tools,
            tool_choice,
            response_format,
            n: count(body, "n")?.unwrap_or(1),
            thinking: thinking(body)?,
        })
    }

    /// Refuses what the provider cannot honor: `n > 1` unless `multiple_choices`, log
    /// probabilities, logit bias, audio output, and each of `also` when set.
    pub(super) fn refuse_unsupported(
        &self,
        provider: &str,
        multiple_choices: bool,
        also: &[&str],
    ) -> Result<(), RequestError> {
        if self.n > 1 && !multiple_choices {
            return Err(unsupported(provider, "n > 1"));
        }
        if self.body.get("logprobs").and_then(Value::as_bool) == Some(true)
            || self.body.get("top_logprobs").is_some_and(|v| !v.is_null())
        {
            return Err(unsupported(provider, "logprobs"));
        }
        for key in ["logit_bias", "audio", "prediction", "web_search_options"]
            .iter()
            .chain(also)
        {
            if self.body.get(*key).is_some_and(is_set) {
                return Err(unsupported(provider, key));
            }
        }
        if let Some(modalities) = self.body.get("modalities").and_then(Value::as_array) {
            if modalities.iter().any(|m| m != "text") {
                return Err(unsupported(provider, "output modalities other than text"));
            }
        }
        Ok(())
    }

    /// `seed`, `frequency_penalty` and `presence_penalty`, those the request sets, under
    /// OpenAI's names.
    pub(super) fn sampling_extras(&self) -> impl Iterator<Item = (&'static str, Value)> + '_ {
        ["seed", "frequency_penalty", "presence_penalty"]
            .into_iter()
            .filter_map(|key| {
                let value = self.body.get(key).filter(|v| !v.is_null())?;
                Some((key, value.clone()))
            })
    }

    /// The name of the function an earlier assistant turn called with this id (Gemini and
    /// Ollama answer tool results by name, not id).
    pub(super) fn tool_name(&self, tool_call_id: &str) -> Option<&str> {
        self.messages.iter().find_map(|m| match m {
            Message::Assistant { tool_calls, .. } => tool_calls
                .iter()
                .find(|c| c.id == tool_call_id)
                .map(|c| c.name.as_str()),
            _ => None,
        })
    }
}

/// `thinking: {"type": "enabled", "budget_tokens": N}` (Anthropic's shape, which LiteLLM
/// and this crate's client translations use), else `reasoning_effort`.
fn thinking(body: &Map<String, Value>) -> Result<Option<Thinking>, RequestError> {
    if let Some(thinking) = body.get("thinking").filter(|v| !v.is_null()) {
        return match thinking.get("type").and_then(Value::as_str) {
            Some("enabled") => thinking
                .get("budget_tokens")
                .and_then(Value::as_u64)
                .map(|n| Some(Thinking::Budget(n)))
                .ok_or_else(|| invalid("thinking.budget_tokens must be a non-negative integer")),
            Some("disabled") => Ok(None),
            _ => Err(invalid("thinking.type must be enabled or disabled")),
        };
    }
    match body.get("reasoning_effort") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(effort)) => Ok(Some(Thinking::Effort(effort.clone()))),
        Some(_) => Err(invalid("reasoning_effort must be a string")),
    }
}

/// Whether a parameter asks for something: not null, `false`, `0` or empty.
fn is_set(value: &Value) -> bool {
    match value {
        Value::Null | Value::Bool(false) => false,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::Object(map) => !map.is_empty(),
        Value::Array(items) => !items.is_empty(),
        _ => true,
    }
}

/// `data:<mime>;base64,<data>` → (mime, data).
pub(crate) fn data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let mime = meta.strip_suffix(";base64")?;
    Some((
        if mime.is_empty() {
            "application/octet-stream"
        } else {
            mime
        },
        data,
    ))
}

/// Appends `items` to the conversation as a `role` turn whose list is under `key`, merged
/// into the previous turn when it has the same role (Anthropic and Gemini want user and
/// assistant turns to alternate; tool results are user turns there).
pub(crate) fn push_turn(turns: &mut Vec<Value>, role: &str, key: &str, items: Vec<Value>) {
    if items.is_empty() {
        return;
    }
    if let Some(last) = turns.last_mut().filter(|turn| turn["role"] == role) {
        if let Some(existing) = last[key].as_array_mut() {
            existing.extend(items);
            return;
        }
    }
    let mut turn = Map::new();
    turn.insert("role".into(), role.into());
    turn.insert(key.into(), items.into());
    turns.push(Value::Object(turn));
}

/// Inserts `key: value` when the value is known.
pub(crate) fn put(map: &mut Map<String, Value>, key: &str, value: Option<impl Into<Value>>) {
    if let Some(value) = value {
        map.insert(key.to_owned(), value.into());
    }
}

/// A credential as a header value, marked sensitive (never logged by hyper or http's `Debug`).
pub(crate) fn secret_header(provider: &str, value: String) -> Result<HeaderValue, RequestError> {
    let mut value = HeaderValue::try_from(value).map_err(|_| RequestError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        code: "invalid_provider_config",
        message: format!("provider {provider:?}: its API key is not a valid header value"),
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// `authorization: Bearer KEY`, the auth of OpenAI-compatible servers, Cohere and Ollama.
pub(crate) fn bearer(
    head: http::request::Builder,
    provider: &str,
    key: &super::ApiKey,
) -> Result<http::request::Builder, RequestError> {
    Ok(head.header(
        http::header::AUTHORIZATION,
        secret_header(provider, format!("Bearer {}", key.expose()))?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(body: Value) -> Result<Vec<Message>, RequestError> {
        let Value::Object(map) = body else { panic!() };
        ChatRequest::parse(&map).map(|r| r.messages)
    }

    #[test]
    fn reads_every_role_and_part() {
        let messages = parse(json!({"messages": [
            {"role": "developer", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
            {"role": "user", "content": [{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}}]},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"x\":1}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "42"}
        ]}))
        .unwrap();
        assert_eq!(messages[0], Message::System("a\nb".into()));
        assert_eq!(
            messages[1],
            Message::User(vec![
                Part::Text("look".into()),
                Part::Image("data:image/png;base64,AAA".into())
            ])
        );
        let Message::Assistant { tool_calls, .. } = &messages[2] else {
            panic!()
        };
        assert_eq!(tool_calls[0].arguments_object().unwrap(), json!({"x": 1}));
        assert_eq!(
            messages[3],
            Message::Tool {
                tool_call_id: "c1".into(),
                content: "42".into()
            }
        );
    }

    #[test]
    fn malformed_requests_are_clear_400s() {
        for (body, needle) in [
            (json!({}), "messages must be an array"),
            (json!({"messages": []}), "must not be empty"),
            (json!({"messages": [{"content": "x"}]}), "messages[0].role"),
            (
                json!({"messages": [{"role": "robot", "content": "x"}]}),
                "\"robot\"",
            ),
            (
                json!({"messages": [{"role": "user", "content": 7}]}),
                "messages[0].content",
            ),
            (
                json!({"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]}),
                "input_audio",
            ),
            (
                json!({"messages": [{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}),
                "cannot hold images",
            ),
            (
                json!({"messages": [{"role": "tool", "content": "x"}]}),
                "tool_call_id",
            ),
            (
                json!({"messages": [{"role": "user", "content": "x"}], "stop": 3}),
                "stop must be",
            ),
            (
                json!({"messages": [{"role": "user", "content": "x"}], "max_tokens": -1}),
                "max_tokens",
            ),
            (
                json!({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "web_search"}]}),
                "only function tools",
            ),
            (
                json!({"messages": [{"role": "user", "content": "x"}], "tool_choice": "sometimes"}),
                "tool_choice",
            ),
        ] {
            let error = parse(body.clone()).unwrap_err();
            assert_eq!(error.status, http::StatusCode::BAD_REQUEST);
            assert!(error.message.contains(needle), "{body}: {}", error.message);
        }
    }

    #[test]
    fn bad_tool_arguments_are_refused_where_an_object_is_needed() {
        let call = ToolCall {
            signature: None,
            id: "c".into(),
            name: "f".into(),
            arguments: "[1]".into(),
        };
        assert_eq!(
            call.arguments_object().unwrap_err().code,
            "invalid_tool_call"
        );
        let empty = ToolCall {
            arguments: String::new(),
            ..call
        };
        assert_eq!(empty.arguments_object().unwrap(), json!({}));
    }

    #[test]
    fn data_urls() {
        assert_eq!(
            data_url("data:image/png;base64,AAAA"),
            Some(("image/png", "AAAA"))
        );
        assert_eq!(data_url("https://x/y.png"), None);
        assert_eq!(data_url("data:text/plain,hi"), None);
    }
}
