//! The upstream request of OpenAI-compatible servers: the body is forwarded (the model name
//! rewritten, see `provider::upstream`), to the endpoint's own path, with a bearer key.

use crate::provider::Endpoint;

/// The path of an endpoint under the base URL (`/chat/completions`, …).
pub(crate) fn path(endpoint: Endpoint) -> &'static str {
    match endpoint {
        Endpoint::ChatCompletions => "/chat/completions",
        Endpoint::Completions => "/completions",
        Endpoint::Responses => "/responses",
        Endpoint::Speech => "/audio/speech",
        Endpoint::Transcriptions => "/audio/transcriptions",
    }
}

/// The URL of an endpoint.
pub(crate) fn url(base: &str, endpoint: Endpoint) -> String {
    format!("{base}{}", path(endpoint))
}
