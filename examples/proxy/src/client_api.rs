//! The routes of the client APIs besides OpenAI's: Anthropic Messages and Gemini, and what
//! their paths, credentials and errors look like.

use crate::util::{ProxyBody, json};
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use tower_llm_stream::provider::ClientApi;
use tower_llm_stream::render::error_body;
use tower_llm_stream::standard::error_json;

/// A request for a client API whose path says more than the API: Gemini's model and method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientRoute {
    /// `POST /v1/messages`, `/anthropic/v1/messages`.
    AnthropicMessages,
    /// `POST …/messages/count_tokens`: not offered (no provider count here).
    AnthropicCountTokens,
    /// `POST /v1beta/models/{model}:generateContent` or `:streamGenerateContent` (also under
    /// `/v1/` and `/gemini/`); `{model}` may contain `/`.
    Gemini { model: String, stream: bool },
    /// Another path under an Anthropic or Gemini prefix: a 404 in that API's shape.
    Unknown(ClientApi),
}

impl ClientRoute {
    /// The route of `path`, if it belongs to the Anthropic or Gemini APIs.
    pub fn parse(path: &str) -> Option<ClientRoute> {
        let trimmed = path.trim_end_matches('/');
        match trimmed {
            "/v1/messages" | "/anthropic/v1/messages" => {
                return Some(ClientRoute::AnthropicMessages);
            }
            "/v1/messages/count_tokens" | "/anthropic/v1/messages/count_tokens" => {
                return Some(ClientRoute::AnthropicCountTokens);
            }
            _ => {}
        }
        let gemini_rest = [
            "/gemini/v1beta/models/",
            "/gemini/v1/models/",
            "/v1beta/models/",
            "/v1/models/",
        ]
        .iter()
        .find_map(|prefix| trimmed.strip_prefix(prefix));
        if let Some(rest) = gemini_rest {
            let rest = rest.strip_prefix("models/").unwrap_or(rest);
            return Some(match rest.rsplit_once(':') {
                Some((model, "generateContent")) if !model.is_empty() => ClientRoute::Gemini {
                    model: model.to_owned(),
                    stream: false,
                },
                Some((model, "streamGenerateContent")) if !model.is_empty() => {
                    ClientRoute::Gemini {
                        model: model.to_owned(),
                        stream: true,
                    }
                }
                // `/v1/models/{id}` without a method is not Gemini's: OpenAI clients' 404.
                None if trimmed.starts_with("/v1/models/") => return None,
                _ => ClientRoute::Unknown(ClientApi::Gemini),
            });
        }
        if trimmed.starts_with("/anthropic/") {
            return Some(ClientRoute::Unknown(ClientApi::AnthropicMessages));
        }
        if trimmed.starts_with("/gemini/") || trimmed.starts_with("/v1beta/") {
            return Some(ClientRoute::Unknown(ClientApi::Gemini));
        }
        None
    }

    /// The API the route belongs to.
    pub fn api(&self) -> ClientApi {
        match self {
            ClientRoute::AnthropicMessages | ClientRoute::AnthropicCountTokens => {
                ClientApi::AnthropicMessages
            }
            ClientRoute::Gemini { .. } => ClientApi::Gemini,
            ClientRoute::Unknown(api) => *api,
        }
    }
}

/// The key a client sent, in any API's header: `Authorization: Bearer`, Anthropic's
/// `x-api-key`, Gemini's `x-goog-api-key` or `?key=`.
pub fn client_key<'a>(headers: &'a HeaderMap, query: Option<&'a str>) -> Option<&'a str> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| header("x-api-key"))
        .or_else(|| header("x-goog-api-key"))
        .or_else(|| query?.split('&').find_map(|pair| pair.strip_prefix("key=")))
        .map(str::trim)
}

/// Whether the query asks for server-sent events (`alt=sse`).
pub fn wants_sse(query: Option<&str>) -> bool {
    query.is_some_and(|q| q.split('&').any(|pair| pair == "alt=sse"))
}

/// An error response in `api`'s shape.
pub fn api_error(
    api: ClientApi,
    status: StatusCode,
    code: &str,
    message: &str,
) -> http::Response<ProxyBody> {
    let error_type = match status.as_u16() {
        400 | 404 | 405 | 408 | 413 => "invalid_request_error",
        401 => "authentication_error",
        429 => "rate_limit_error",
        501 => "not_implemented",
        _ => "upstream_error",
    };
    let standard = error_json(error_type, code, message);
    json(status, rewrite(api, status, &standard))
}

/// A standard error body rewritten in `api`'s error shape.
pub fn rewrite(api: ClientApi, status: StatusCode, body: &[u8]) -> Bytes {
    error_body(api, status, body)
}
