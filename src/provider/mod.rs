//! Everything the crate knows about each provider, one folder per provider API: its stream
//! dialect, and (cargo feature `provider`, on by default) its request translation, URL and
//! auth. [`ProviderKind`] is the one identity type that maps to all of them;
//! [`AnyDialect`] is the dialect of any of them, chosen at run time.
//!
//! | folder | API | dialect | request |
//! |---|---|---|---|
//! | [`openai`] | OpenAI and compatible servers | [`OpenAiCompatible`](openai::OpenAiCompatible), [`OpenAiResponses`](openai::OpenAiResponses) | forwarded, model rewritten |
//! | [`anthropic`] | Messages | [`AnthropicMessages`](anthropic::AnthropicMessages) | translated |
//! | [`gemini`] | `streamGenerateContent` | [`Gemini`](gemini::Gemini) | translated |
//! | [`cohere`] | v2 chat | [`Cohere`](cohere::Cohere) | translated |
//! | [`ollama`] | native `/api/chat` | [`Ollama`](ollama::Ollama) | translated |
//! | [`bedrock`] | ConverseStream | [`Bedrock`](bedrock::Bedrock) | translated, SigV4-signed ([`AwsCredentials`](bedrock::AwsCredentials)) |
//!
//! With the `provider` feature, what a proxy needs besides the layers: `provider/model`
//! routing, providers configured from the environment, request translation from the OpenAI
//! chat request to each provider's own API, upstream auth headers, and folding a standard
//! stream back into one `chat.completion`. The example proxy is thin glue over it; an axum
//! or hyper app can use it the same way:
//!
//! ```
//! # #[cfg(feature = "provider")] {
//! use tower_llm_stream::provider::Endpoint;
//! use tower_llm_stream::provider::{Provider, ProviderKind, Providers};
//!
//! let providers = Providers::new()
//!     .with(Provider::new("anthropic", ProviderKind::Anthropic, "https://api.anthropic.com/v1")
//!         .unwrap()
//!         .api_key("sk-ant-example"));
//! let body = serde_json::json!({
//!     "model": "anthropic/claude-sonnet-4-5",
//!     "stream": true,
//!     "messages": [
//!         {"role": "system", "content": "Be brief."},
//!         {"role": "user", "content": "Hello"}
//!     ]
//! });
//! let model = body["model"].as_str().unwrap().to_owned();
//! let route = providers.route(&model).unwrap();
//! let upstream = route.prepare(Endpoint::ChatCompletions, body).unwrap();
//! assert_eq!(upstream.request.uri(), "https://api.anthropic.com/v1/messages");
//! assert_eq!(upstream.request.headers()["x-api-key"], "sk-ant-example");
//! let sent: serde_json::Value = serde_json::from_slice(upstream.request.body()).unwrap();
//! assert_eq!(sent["system"], "Be brief.");
//! assert_eq!(sent["model"], "claude-sonnet-4-5");
//! assert_eq!(sent["max_tokens"], 4096); // Anthropic requires it; OpenAI's default is unbounded
//! # }
//! ```
//!
//! What crosses to the upstream is built from scratch: the translated body, `content-type`,
//! `accept` and the provider's own auth headers. Nothing the client sent as a header (its
//! `authorization`, cookies, anything) is forwarded, so a client's key never reaches a
//! provider and one provider's key never reaches another. [`ApiKey`] never prints its value.
//!
//! ## Translation
//!
//! | OpenAI chat request | Anthropic Messages | Gemini | Cohere v2 | Ollama `/api/chat` |
//! |---|---|---|---|---|
//! | `system` / `developer` messages | `system` | `systemInstruction` | `system` messages | `system` messages |
//! | user / assistant text and image parts | content blocks | `parts` (`inlineData` for data URLs, `fileData` else) | content parts | `content` + `images` (data URLs only) |
//! | assistant `tool_calls` | `tool_use` blocks | `functionCall` parts | `tool_calls` | `tool_calls` (arguments as an object) |
//! | `tool` messages | `tool_result` blocks in a user turn | `functionResponse` parts | `tool` messages | `tool` messages |
//! | `max_completion_tokens` / `max_tokens` | `max_tokens` (default 4096) | `maxOutputTokens` | `max_tokens` | `options.num_predict` |
//! | `temperature`, `top_p`, `stop` | same names, `stop_sequences` | `temperature`, `topP`, `stopSequences` | `temperature`, `p`, `stop_sequences` | `options.*` |
//! | `seed`, `frequency_penalty`, `presence_penalty` | (rejected: not supported) | `seed`, `frequencyPenalty`, `presencePenalty` | same names | `options.*` |
//! | `tools` (functions) | `tools` with `input_schema` | `functionDeclarations` with `parametersJsonSchema` | `tools` | `tools` |
//! | `tool_choice` | `auto` / `any` / `tool` / `none` | `functionCallingConfig` | `REQUIRED` / `NONE` | `auto` / `none` only |
//! | `n` > 1 | rejected | `candidateCount` | rejected | rejected |
//! | `response_format` | rejected | `responseMimeType` (+ `responseJsonSchema`) | `response_format` | `format` |
//! | `stream` | `stream` | `:streamGenerateContent?alt=sse` | `stream` | `stream` |
//!
//! A parameter the provider cannot honor is a `400` naming it, never silently dropped;
//! `user`, `metadata`, `store`, `parallel_tool_calls: true`, `stream_options` and `logprobs:
//! false` are accepted and mean nothing upstream. OpenAI-compatible upstreams get the body
//! as sent, with the model name rewritten and, for streams, `stream_options.include_usage`
//! set so usage is always known (except Mistral, which rejects the field and reports usage
//! anyway).
//!
//! A non-streaming request to a provider whose API is translated is sent upstream as a stream
//! and folded back into one `chat.completion` ([`ChatCompletionAggregator`]), so the client
//! gets OpenAI's shape either way.

pub mod anthropic;
pub mod bedrock;
pub mod cohere;
pub mod gemini;
pub mod ollama;
pub mod openai;

#[cfg(feature = "provider")]
mod aggregate;
mod any;
#[cfg(feature = "provider")]
mod client;
#[cfg(feature = "provider")]
mod registry;
#[cfg(feature = "provider")]
mod request;
#[cfg(feature = "provider")]
mod upstream;

pub use any::{AnyDialect, ClientApi, Endpoint};

#[cfg(feature = "provider")]
pub use aggregate::ChatCompletionAggregator;
#[cfg(feature = "provider")]
pub use client::chat_request;
#[cfg(feature = "provider")]
pub use registry::{ApiKey, Provider, Providers, Route};
#[cfg(feature = "provider")]
pub use upstream::UpstreamRequest;

#[cfg(feature = "provider")]
use bytes::Bytes;
#[cfg(feature = "provider")]
use http::StatusCode;
#[cfg(feature = "provider")]
use std::fmt;

/// The provider APIs the crate knows: what a provider speaks decides its dialect and (feature
/// `provider`) its request translation, URL and auth.
///
/// ```
/// use tower_llm_stream::provider::{AnyDialect, Endpoint, ProviderKind};
///
/// assert_eq!(ProviderKind::from_name("Anthropic"), ProviderKind::Anthropic);
/// assert_eq!(ProviderKind::from_name("groq"), ProviderKind::OpenAiCompatible);
/// let dialect = ProviderKind::Gemini.dialect(Endpoint::ChatCompletions);
/// assert!(matches!(dialect, AnyDialect::Gemini(_)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProviderKind {
    /// OpenAI's API or a compatible one (OpenAI, Groq, Mistral, DeepSeek, OpenRouter, vLLM,
    /// llama.cpp, …): every endpoint, the body forwarded with the model name rewritten.
    OpenAiCompatible,
    /// Anthropic's Messages API (`POST /messages`, `x-api-key`).
    Anthropic,
    /// Google's Gemini API (`:streamGenerateContent?alt=sse`, `x-goog-api-key`).
    Gemini,
    /// Cohere's v2 chat API (`POST /chat`).
    Cohere,
    /// Ollama's native API (`POST /api/chat`, NDJSON).
    Ollama,
    /// Amazon Bedrock's ConverseStream (`POST /model/{id}/converse-stream`, AWS event-stream),
    /// requests signed with SigV4.
    Bedrock,
}

impl ProviderKind {
    /// The API a provider speaks, from the name the proxy gives it: `anthropic`, `gemini` (or
    /// `google`), `cohere`, `ollama` (native API), `bedrock`; any other name (`openai`,
    /// `azure`, `groq`, `mistral`, `deepseek`, `openrouter`, `vllm`, `llamacpp`, a custom
    /// server) is OpenAI-compatible. Case is ignored.
    #[must_use]
    pub fn from_name(name: &str) -> ProviderKind {
        let lowercase = |known: &str| name.eq_ignore_ascii_case(known);
        if lowercase("anthropic") {
            ProviderKind::Anthropic
        } else if lowercase("gemini") || lowercase("google") {
            ProviderKind::Gemini
        } else if lowercase("cohere") {
            ProviderKind::Cohere
        } else if lowercase("ollama") {
            ProviderKind::Ollama
        } else if lowercase("bedrock") {
            ProviderKind::Bedrock
        } else {
            ProviderKind::OpenAiCompatible
        }
    }

    /// The dialect this API streams for an endpoint: each API's own, and for
    /// OpenAI-compatible upstreams the Responses API normalizer on [`Endpoint::Responses`].
    #[must_use]
    pub fn dialect(self, endpoint: Endpoint) -> AnyDialect {
        match (self, endpoint) {
            (ProviderKind::Anthropic, _) => {
                AnyDialect::Anthropic(anthropic::AnthropicMessages::new())
            }
            (ProviderKind::Gemini, _) => AnyDialect::Gemini(gemini::Gemini::new()),
            (ProviderKind::Cohere, _) => AnyDialect::Cohere(cohere::Cohere::new()),
            (ProviderKind::Ollama, _) => AnyDialect::Ollama(ollama::Ollama::new()),
            (ProviderKind::Bedrock, _) => AnyDialect::Bedrock(bedrock::Bedrock::new()),
            (ProviderKind::OpenAiCompatible, Endpoint::Responses) => {
                AnyDialect::Responses(openai::OpenAiResponses::new())
            }
            (ProviderKind::OpenAiCompatible, _) => {
                AnyDialect::OpenAi(openai::OpenAiCompatible::new())
            }
        }
    }
}

#[cfg(feature = "provider")]
/// A request the proxy refuses before anything is sent upstream: an unknown provider or
/// model, a malformed body, a parameter the provider cannot honor. Renders as OpenAI's error
/// shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestError {
    /// The HTTP status (`400`, `404`, `413`, …).
    pub status: StatusCode,
    /// A stable machine-readable code, e.g. `unknown_provider`.
    pub code: &'static str,
    /// What was wrong, for a human.
    pub message: String,
}

#[cfg(feature = "provider")]
impl RequestError {
    /// A `400 Bad Request` with a code and a message.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        RequestError {
            status: StatusCode::BAD_REQUEST,
            code,
            message: message.into(),
        }
    }

    /// The JSON body: `{"error":{"type":"invalid_request_error","code":…,"message":…}}`.
    ///
    /// ```
    /// use tower_llm_stream::provider::RequestError;
    /// let error = RequestError::bad_request("unknown_provider", "no provider \"x\"");
    /// assert_eq!(
    ///     error.body(),
    ///     r#"{"error":{"type":"invalid_request_error","code":"unknown_provider","message":"no provider \"x\""}}"#
    /// );
    /// ```
    #[must_use]
    pub fn body(&self) -> Bytes {
        crate::standard::error_json("invalid_request_error", self.code, &self.message)
    }
}

#[cfg(feature = "provider")]
impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.status, self.code, self.message)
    }
}

#[cfg(feature = "provider")]
impl std::error::Error for RequestError {}
