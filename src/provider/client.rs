//! Requests in each client API, read as the standard (OpenAI chat) request that every
//! provider's translation starts from. Each API's reader lives in its provider folder
//! (`anthropic/client.rs`, `gemini/client.rs`, `openai/client.rs`); this module picks one
//! and holds what they share.

use super::{ClientApi, RequestError};
use serde_json::{Map, Value};

/// The OpenAI chat request for a request `body` in `api`. `stream` is whether the client
/// asked for a stream (Gemini says it in the path, not the body). What the chat request
/// cannot express is a `400` naming the parameter.
///
/// ```
/// use serde_json::json;
/// use tower_llm_stream::provider::{ClientApi, chat_request};
///
/// let body = json!({"model": "openai/gpt-4o-mini", "max_tokens": 100, "system": "Be brief.",
///     "messages": [{"role": "user", "content": "Hi"}], "stream": true});
/// let chat = chat_request(ClientApi::AnthropicMessages, body.as_object().unwrap(), true).unwrap();
/// assert_eq!(chat["messages"][0], json!({"role": "system", "content": "Be brief."}));
/// assert_eq!(chat["max_tokens"], 100);
/// assert_eq!(chat["stream"], true);
/// ```
pub fn chat_request(
    api: ClientApi,
    body: &Map<String, Value>,
    stream: bool,
) -> Result<Value, RequestError> {
    let mut chat = match api {
        ClientApi::ChatCompletions => Value::Object(body.clone()),
        ClientApi::Completions => super::openai::client::from_completions(body)?,
        ClientApi::Responses => super::openai::client::from_responses(body)?,
        ClientApi::AnthropicMessages => super::anthropic::client::chat_request(body)?,
        ClientApi::Gemini => super::gemini::client::chat_request(body)?,
    };
    if let Some(model) = body.get("model") {
        chat["model"] = model.clone();
    }
    chat["stream"] = stream.into();
    Ok(chat)
}

pub(crate) fn invalid(message: impl Into<String>) -> RequestError {
    RequestError::bad_request("invalid_request", message)
}

/// Refuses each of `keys` the body sets: the chat request has no place for them.
pub(crate) fn refuse(
    body: &Map<String, Value>,
    keys: &[&str],
    api: &str,
) -> Result<(), RequestError> {
    for key in keys {
        if body.get(*key).is_some_and(|v| !v.is_null()) {
            return Err(RequestError::bad_request(
                "unsupported_parameter",
                format!("{key} ({api}) cannot be translated for this provider: remove it"),
            ));
        }
    }
    Ok(())
}

/// A string, or an array of text blocks/parts (`{"type":"text","text"}`), as one text.
pub(crate) fn text_of_blocks(value: &Value, what: &str) -> Result<String, RequestError> {
    match value {
        Value::String(text) => Ok(text.clone()),
        Value::Array(blocks) => {
            let mut text = String::new();
            for block in blocks {
                match block.get("text").and_then(Value::as_str) {
                    Some(t) => {
                        if !text.is_empty() {
                            text.push('\n');
                        }
                        text.push_str(t);
                    }
                    None => {
                        return Err(RequestError::bad_request(
                            "unsupported_parameter",
                            format!(
                                "{what}: only text blocks can be translated here, not {}",
                                block.get("type").unwrap_or(&Value::Null)
                            ),
                        ));
                    }
                }
            }
            Ok(text)
        }
        _ => Err(invalid(format!(
            "{what} must be a string or an array of text blocks"
        ))),
    }
}
