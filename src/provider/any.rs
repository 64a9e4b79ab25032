//! One dialect type for every provider, chosen at run time.

use super::ProviderKind;
use super::anthropic::{AnthropicMessages, AnthropicNative};
use super::bedrock::Bedrock;
use super::cohere::Cohere;
use super::gemini::{Gemini, GeminiNative};
use super::ollama::Ollama;
use super::openai::{OpenAiCompatible, OpenAiResponses};
use crate::dialect::{Dialect, Framing, Passthrough};
use crate::error::StreamError;
use crate::sse::Block;
use crate::standard::Frames;

/// The streaming endpoints in scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `/v1/chat/completions`
    ChatCompletions,
    /// `/v1/completions`
    Completions,
    /// `/v1/responses`
    Responses,
    /// `/v1/audio/speech` with `stream_format: "sse"`
    Speech,
    /// `/v1/audio/transcriptions` with `stream=true`
    Transcriptions,
}

impl Endpoint {
    /// The endpoint of a request path (`/v1/chat/completions`, …), if it is one of them.
    #[must_use]
    pub fn from_path(path: &str) -> Option<Endpoint> {
        let path = path.trim_end_matches('/');
        Some(
            match path.rsplit_once("/v1/").map_or(path, |(_, rest)| rest) {
                "chat/completions" => Endpoint::ChatCompletions,
                "completions" => Endpoint::Completions,
                "responses" => Endpoint::Responses,
                "audio/speech" => Endpoint::Speech,
                "audio/transcriptions" => Endpoint::Transcriptions,
                _ => return None,
            },
        )
    }
}

/// The API a client speaks: what [`RenderLayer`](crate::render::RenderLayer) renders the standard chat stream into.
/// Insert it as a request extension; without one a request is OpenAI chat.
///
/// ```
/// use tower_llm_stream::provider::ClientApi;
///
/// assert_eq!(ClientApi::default(), ClientApi::ChatCompletions);
/// assert_eq!(ClientApi::AnthropicMessages.name(), "anthropic_messages");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ClientApi {
    /// OpenAI chat completions: the standard stream itself.
    #[default]
    ChatCompletions,
    /// OpenAI text completions (`object: "text_completion"`, `choices[].text`).
    Completions,
    /// The OpenAI Responses API.
    Responses,
    /// Anthropic Messages.
    AnthropicMessages,
    /// Gemini `streamGenerateContent?alt=sse` / `generateContent`.
    Gemini,
}

impl ClientApi {
    /// A stable name for logs and metrics.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            ClientApi::ChatCompletions => "chat_completions",
            ClientApi::Completions => "completions",
            ClientApi::Responses => "responses",
            ClientApi::AnthropicMessages => "anthropic_messages",
            ClientApi::Gemini => "gemini",
        }
    }
}

/// Any of the crate's dialects, chosen at run time (from the provider name, a route, a
/// request). Use it as the layer's dialect; a request extension of this type overrides the
/// layer's choice for that request.
///
/// ```
/// use tower_llm_stream::provider::{AnyDialect, Endpoint};
/// use tower_llm_stream::reframe::SseReframeLayer;
///
/// let dialect = AnyDialect::for_provider("anthropic", Endpoint::ChatCompletions);
/// assert!(matches!(dialect, AnyDialect::Anthropic(_)));
/// let layer = SseReframeLayer::new().dialect(AnyDialect::for_provider("openai", Endpoint::Responses));
///
/// // Per request: the handler that knows the provider says so.
/// let mut request = http::Request::new(());
/// request.extensions_mut().insert(AnyDialect::for_provider("gemini", Endpoint::ChatCompletions));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AnyDialect {
    /// [`Passthrough`]
    Passthrough(Passthrough),
    /// [`OpenAiCompatible`]
    OpenAi(OpenAiCompatible),
    /// [`OpenAiResponses`]
    Responses(OpenAiResponses),
    /// [`AnthropicMessages`]
    Anthropic(AnthropicMessages),
    /// [`Gemini`]
    Gemini(Gemini),
    /// [`Cohere`]
    Cohere(Cohere),
    /// [`Ollama`] (native API)
    Ollama(Ollama),
    /// [`Bedrock`] (ConverseStream)
    Bedrock(Bedrock),
    /// [`AnthropicNative`]: Anthropic's stream for an Anthropic client, untranslated.
    AnthropicNative(AnthropicNative),
    /// [`GeminiNative`]: Gemini's stream for a Gemini client, untranslated.
    GeminiNative(GeminiNative),
}

impl Default for AnyDialect {
    fn default() -> Self {
        AnyDialect::OpenAi(OpenAiCompatible::new())
    }
}

impl AnyDialect {
    /// The dialect a provider streams for an endpoint, as the proxy names providers:
    /// `anthropic`, `gemini` (or `google`), `cohere`, `ollama` (native API), `bedrock`
    /// (ConverseStream) have their own;
    /// every other provider (`openai`, `azure`, `groq`, `mistral`, `deepseek`, `openrouter`,
    /// `vllm`, `llamacpp`, custom OpenAI-compatible servers) speaks OpenAI's, with the
    /// Responses API normalizer for [`Endpoint::Responses`].
    #[must_use]
    pub fn for_provider(provider: &str, endpoint: Endpoint) -> AnyDialect {
        ProviderKind::from_name(provider).dialect(endpoint)
    }

    fn inner(&mut self) -> &mut dyn Dialect {
        match self {
            AnyDialect::Passthrough(d) => d,
            AnyDialect::OpenAi(d) => d,
            AnyDialect::Responses(d) => d,
            AnyDialect::Anthropic(d) => d,
            AnyDialect::Gemini(d) => d,
            AnyDialect::Cohere(d) => d,
            AnyDialect::Ollama(d) => d,
            AnyDialect::Bedrock(d) => d,
            AnyDialect::AnthropicNative(d) => d,
            AnyDialect::GeminiNative(d) => d,
        }
    }
}

impl Dialect for AnyDialect {
    fn on_block(&mut self, block: Block, out: &mut Frames) -> Result<(), StreamError> {
        self.inner().on_block(block, out)
    }

    fn on_unterminated(&mut self, block: Block, out: &mut Frames) -> Result<(), StreamError> {
        self.inner().on_unterminated(block, out)
    }

    fn framing(&self) -> Framing {
        match self {
            AnyDialect::Ollama(d) => d.framing(),
            AnyDialect::Bedrock(d) => d.framing(),
            _ => Framing::Sse,
        }
    }

    fn on_end(&mut self, out: &mut Frames) -> Result<(), StreamError> {
        self.inner().on_end(out)
    }
}
