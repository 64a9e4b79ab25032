//! Normalized HTTP error bodies: what an upstream's `4xx`/`5xx` said, in the standard shape.

use crate::standard::error_json;
use bytes::Bytes;
use http::StatusCode;
use serde_json::Value;

/// The error type a status implies when the upstream's body does not say.
pub(crate) fn type_for_status(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        408 | 504 => "timeout_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        500..=599 => "upstream_error",
        _ => "invalid_request_error",
    }
}

/// The canonical `{"error":{"type","code","message"}}` body for an upstream error response,
/// keeping what the upstream said in any of the common shapes: OpenAI / Anthropic
/// (`error.type`, `error.code`, `error.message`), Gemini (`error.status`, numeric
/// `error.code`), Ollama (`error` string), Cohere and others (`message`, `detail`), or plain
/// text. Returns the body and its error code.
pub(crate) fn normalize_error_body(status: StatusCode, body: &[u8]) -> (Bytes, String) {
    let default_type = type_for_status(status);
    let default_message = || {
        format!(
            "the upstream answered {} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        )
        .trim_end()
        .to_owned()
    };
    let text_of = |value: &Value| -> Option<String> {
        match value {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    let (mut error_type, mut code, mut message) = (None, None, None);
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(root)) => {
            match root.get("error") {
                Some(Value::Object(error)) => {
                    error_type = error.get("type").and_then(text_of);
                    // Gemini: numeric HTTP code plus a status name; prefer the name.
                    code = error
                        .get("status")
                        .and_then(text_of)
                        .or_else(|| error.get("code").and_then(text_of));
                    message = error.get("message").and_then(text_of);
                }
                Some(other) => message = text_of(other),
                None => {}
            }
            message = message
                .or_else(|| root.get("message").and_then(text_of))
                .or_else(|| root.get("detail").and_then(text_of));
            if error_type.is_none() && root.get("type").and_then(Value::as_str) != Some("error") {
                error_type = root.get("type").and_then(text_of);
            }
        }
        _ => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if !text.is_empty() {
                let cut: String = text.chars().take(1000).collect();
                message = Some(cut);
            }
        }
    }
    let error_type = error_type.unwrap_or_else(|| default_type.to_owned());
    let code = code.unwrap_or_else(|| error_type.clone());
    let body = error_json(&error_type, &code, &message.unwrap_or_else(default_message));
    (body, code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(status: u16, body: &str) -> Value {
        let (out, code) =
            normalize_error_body(StatusCode::from_u16(status).unwrap(), body.as_bytes());
        let value: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(value["error"]["code"], code.as_str());
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn openai_shape_is_kept() {
        let v = norm(
            429,
            r#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#,
        );
        assert_eq!(v["error"]["type"], "requests");
        assert_eq!(v["error"]["code"], "rate_limit_exceeded");
        assert_eq!(v["error"]["message"], "Rate limit reached");
    }

    #[test]
    fn anthropic_shape() {
        let v = norm(
            529,
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        );
        assert_eq!(v["error"]["type"], "overloaded_error");
        assert_eq!(v["error"]["code"], "overloaded_error");
        assert_eq!(v["error"]["message"], "Overloaded");
    }

    #[test]
    fn gemini_shape() {
        let v = norm(
            429,
            r#"{"error":{"code":429,"message":"Resource has been exhausted","status":"RESOURCE_EXHAUSTED"}}"#,
        );
        assert_eq!(v["error"]["type"], "rate_limit_error");
        assert_eq!(v["error"]["code"], "RESOURCE_EXHAUSTED");
        assert_eq!(v["error"]["message"], "Resource has been exhausted");
    }

    #[test]
    fn ollama_cohere_text_and_empty() {
        assert_eq!(
            norm(404, r#"{"error":"model 'x' not found"}"#)["error"]["message"],
            "model 'x' not found"
        );
        assert_eq!(
            norm(400, r#"{"message":"invalid request: bad"}"#)["error"]["message"],
            "invalid request: bad"
        );
        assert_eq!(
            norm(422, r#"{"detail":"field required"}"#)["error"]["type"],
            "invalid_request_error"
        );
        let v = norm(502, "<html>Bad Gateway</html>\n");
        assert_eq!(v["error"]["message"], "<html>Bad Gateway</html>");
        assert_eq!(v["error"]["type"], "upstream_error");
        assert_eq!(
            norm(503, "")["error"]["message"],
            "the upstream answered 503 Service Unavailable"
        );
    }
}
