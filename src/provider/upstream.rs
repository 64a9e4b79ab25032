//! The request sent upstream: URL, auth headers, translated body, and the dialect that reads
//! the answer.

use super::RequestError;
use super::openai::request::path;
use super::registry::Route;
use super::request::ChatRequest;
use super::request::bearer;
use super::{
    AnyDialect, ClientApi, Endpoint, ProviderKind, anthropic, bedrock, cohere, gemini, ollama,
    openai,
};
use crate::standard::json::{for_each_entry, raw_string};
use bytes::Bytes;
use http::Method;
use http::header::{ACCEPT, CONTENT_TYPE, USER_AGENT};
use serde_json::value::RawValue;
use serde_json::{Value, json};

const AGENT: &str = concat!("tower-llm-stream/", env!("CARGO_PKG_VERSION"));

/// A request ready to send upstream, and how to read the answer.
#[derive(Debug)]
pub struct UpstreamRequest {
    /// Method, absolute URL, headers (content type, accept, the provider's auth) and body.
    pub request: http::Request<Bytes>,
    /// The dialect of the provider's stream, for [`SseReframeLayer`](crate::reframe::SseReframeLayer)
    /// (insert it as a request extension).
    pub dialect: AnyDialect,
    /// Whether the client asked for a stream.
    pub stream: bool,
    /// The upstream streams although the client did not ask for a stream (translated APIs are
    /// always streamed): fold the standard stream with
    /// [`ChatCompletionAggregator`](super::ChatCompletionAggregator).
    pub aggregate: bool,
}

fn endpoint_name(endpoint: Endpoint) -> String {
    format!("/v1{}", path(endpoint))
}

fn streams(endpoint: Endpoint, body: &serde_json::Map<String, Value>) -> bool {
    match endpoint {
        Endpoint::Speech => body.get("stream_format").and_then(Value::as_str) == Some("sse"),
        _ => body.get("stream").and_then(Value::as_bool) == Some(true),
    }
}

impl Route<'_> {
    /// Whether the client's request asks for a stream, read from the body as each endpoint
    /// says: `stream: true`, or `stream_format: "sse"` for speech.
    #[must_use]
    pub fn wants_stream(endpoint: Endpoint, body: &Value) -> bool {
        body.as_object().is_some_and(|map| streams(endpoint, map))
    }

    /// The dialect the provider streams on this endpoint.
    #[must_use]
    pub fn dialect(&self, endpoint: Endpoint) -> AnyDialect {
        match self.provider.kind() {
            // Bedrock streams no model name: the route knows it.
            ProviderKind::Bedrock => AnyDialect::Bedrock(bedrock::Bedrock::for_model(self.model)),
            kind => kind.dialect(endpoint),
        }
    }

    /// The head of the upstream request: `POST`, the provider's URL for the endpoint, its
    /// auth headers, `accept`, `user-agent`. The body and `content-type` are the caller's (for
    /// a multipart upload streamed through). Fails for an endpoint the provider's API does not
    /// have (translated APIs offer chat completions only).
    pub fn request_head(
        &self,
        endpoint: Endpoint,
        stream: bool,
    ) -> Result<http::request::Builder, RequestError> {
        let provider = self.provider;
        let base = provider.base_url();
        let kind = provider.kind();
        if kind != ProviderKind::OpenAiCompatible && endpoint != Endpoint::ChatCompletions {
            return Err(RequestError::bad_request(
                "unsupported_endpoint",
                format!(
                    "provider {:?} offers only /v1/chat/completions here, not {}",
                    provider.name(),
                    endpoint_name(endpoint)
                ),
            ));
        }
        let url = match kind {
            ProviderKind::OpenAiCompatible => openai::request::url(base, endpoint),
            ProviderKind::Anthropic => anthropic::request::url(base),
            ProviderKind::Gemini => gemini::request::url(base, self.model)?,
            ProviderKind::Cohere => cohere::request::url(base),
            ProviderKind::Ollama => ollama::request::url(base),
            ProviderKind::Bedrock => bedrock::request::url(base, self.model),
        };
        let streams = stream || kind != ProviderKind::OpenAiCompatible;
        let accept = match kind {
            _ if !streams => "application/json",
            ProviderKind::Ollama => ollama::request::STREAM_CONTENT_TYPE,
            ProviderKind::Bedrock => bedrock::request::STREAM_CONTENT_TYPE,
            _ => "text/event-stream",
        };
        let head = http::Request::builder()
            .method(Method::POST)
            .uri(url)
            .header(USER_AGENT, AGENT)
            .header(ACCEPT, accept);
        let name = provider.name();
        let head = match (kind, provider.key()) {
            (ProviderKind::Anthropic, key) => anthropic::request::auth(head, name, key)?,
            (ProviderKind::Gemini, Some(key)) => gemini::request::auth(head, name, key)?,
            // Bedrock signs the whole request once its body is known (`upstream_request`).
            (ProviderKind::Bedrock, _) | (_, None) => head,
            (_, Some(key)) => bearer(head, name, key)?,
        };
        Ok(head)
    }

    /// Prepares a JSON request for an endpoint: the body translated for the provider's API
    /// (or, for OpenAI-compatible providers, forwarded with the model name rewritten and
    /// `stream_options.include_usage` set on streams), and the head from
    /// [`Route::request_head`].
    pub fn prepare(
        &self,
        endpoint: Endpoint,
        body: Value,
    ) -> Result<UpstreamRequest, RequestError> {
        let Value::Object(mut map) = body else {
            return Err(RequestError::bad_request(
                "invalid_request",
                "the request body must be a JSON object",
            ));
        };
        if let Some(stream) = map
            .get("stream")
            .filter(|s| !s.is_null() && !s.is_boolean())
        {
            return Err(not_a_boolean(stream));
        }
        let stream = streams(endpoint, &map);
        let head = self.request_head(endpoint, stream)?;
        let kind = self.provider.kind();
        let translated = match kind {
            ProviderKind::OpenAiCompatible => {
                map.insert("model".into(), self.model.into());
                match self.stream_options(endpoint, stream) {
                    StreamOptions::SetIncludeUsage => match map.get_mut("stream_options") {
                        Some(Value::Object(options)) => {
                            options.insert("include_usage".into(), true.into());
                        }
                        _ => {
                            map.insert("stream_options".into(), json!({"include_usage": true}));
                        }
                    },
                    StreamOptions::Remove => {
                        map.remove("stream_options");
                    }
                    StreamOptions::Keep => {}
                }
                Value::Object(map)
            }
            _ => {
                let request = ChatRequest::parse(&map)?;
                match kind {
                    ProviderKind::Anthropic => anthropic::request::anthropic(&request, self.model)?,
                    ProviderKind::Gemini => gemini::request::gemini(&request)?,
                    ProviderKind::Cohere => cohere::request::cohere(&request, self.model)?,
                    ProviderKind::Bedrock => bedrock::request::bedrock(&request)?,
                    _ => ollama::request::ollama(&request, self.model)?,
                }
            }
        };
        let body = Bytes::from(serde_json::to_vec(&translated).map_err(|e| {
            RequestError::bad_request("invalid_request", format!("cannot encode the request: {e}"))
        })?);
        self.upstream_request(head, body, endpoint, stream)
    }

    /// What happens to an OpenAI-compatible body's `stream_options`: streamed chat and
    /// completions get `include_usage` (from providers that accept it); providers that reject
    /// the field never see it.
    fn stream_options(&self, endpoint: Endpoint, stream: bool) -> StreamOptions {
        let counts_usage = matches!(endpoint, Endpoint::ChatCompletions | Endpoint::Completions);
        if !self.provider.adds_include_usage() {
            StreamOptions::Remove
        } else if stream && counts_usage {
            StreamOptions::SetIncludeUsage
        } else {
            StreamOptions::Keep
        }
    }

    /// The prepared request: `head` with the JSON `body`, and how to read the answer.
    fn upstream_request(
        &self,
        head: http::request::Builder,
        body: Bytes,
        endpoint: Endpoint,
        stream: bool,
    ) -> Result<UpstreamRequest, RequestError> {
        let mut request = head
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .map_err(|e| RequestError::bad_request("invalid_request", e.to_string()))?;
        if let Some(credentials) = self.provider.aws() {
            // SigV4 covers the method, URL, headers and body: signed last, as sent.
            credentials.sign(&mut request)?;
        }
        Ok(UpstreamRequest {
            request,
            dialect: self.dialect(endpoint),
            stream,
            aggregate: !stream && self.provider.kind() != ProviderKind::OpenAiCompatible,
        })
    }
}

impl Route<'_> {
    /// A streamed request from a client that speaks the provider's own API (Anthropic
    /// Messages to an Anthropic provider, Gemini to a Gemini provider), forwarded without
    /// translation: the client's body with the model named as the provider knows it, and a
    /// dialect that keeps the provider's events as they are ([`AnthropicNative`](anthropic::AnthropicNative),
    /// [`GeminiNative`](gemini::GeminiNative)), so signatures, cache counts and event order
    /// survive while the layers still watch time and truncation. `None` when the provider
    /// speaks another API (then translate with [`chat_request`](super::chat_request)).
    ///
    /// ```
    /// use tower_llm_stream::provider::{AnyDialect, ClientApi, Providers};
    ///
    /// let vars = [("ANTHROPIC_API_KEY".to_owned(), "sk-ant-test".to_owned())];
    /// let providers = Providers::from_vars(vars).unwrap();
    /// let route = providers.route("anthropic/claude-sonnet-4-5").unwrap();
    /// let body = serde_json::json!({"model": "anthropic/claude-sonnet-4-5", "max_tokens": 9,
    ///     "messages": [{"role": "user", "content": "Hi"}], "stream": true});
    /// let upstream = route.prepare_native(ClientApi::AnthropicMessages, body.as_object().unwrap().clone()).unwrap().unwrap();
    /// assert_eq!(upstream.request.uri().path(), "/v1/messages");
    /// let sent: serde_json::Value = serde_json::from_slice(upstream.request.body()).unwrap();
    /// assert_eq!(sent["model"], "claude-sonnet-4-5");
    /// assert!(matches!(upstream.dialect, AnyDialect::AnthropicNative(_)));
    /// ```
    #[must_use]
    pub fn prepare_native(
        &self,
        api: ClientApi,
        mut body: serde_json::Map<String, Value>,
    ) -> Option<Result<UpstreamRequest, RequestError>> {
        let dialect = match (api, self.provider.kind()) {
            (ClientApi::AnthropicMessages, ProviderKind::Anthropic) => {
                body.insert("model".into(), self.model.into());
                body.insert("stream".into(), true.into());
                AnyDialect::AnthropicNative(anthropic::AnthropicNative::new())
            }
            (ClientApi::Gemini, ProviderKind::Gemini) => {
                body.remove("model");
                AnyDialect::GeminiNative(gemini::GeminiNative::new())
            }
            _ => return None,
        };
        Some((|| {
            let head = self.request_head(Endpoint::ChatCompletions, true)?;
            let body = Bytes::from(serde_json::to_vec(&body).map_err(|e| {
                RequestError::bad_request(
                    "invalid_request",
                    format!("cannot encode the request: {e}"),
                )
            })?);
            let mut upstream =
                self.upstream_request(head, body, Endpoint::ChatCompletions, true)?;
            upstream.dialect = dialect;
            Ok(upstream)
        })())
    }
}

impl Route<'_> {
    /// [`prepare`](Self::prepare) from the body's bytes. For an OpenAI-compatible provider the
    /// body is rewritten as it is read, not parsed into a [`Value`] and written again: the
    /// `model` value replaced, `stream_options` set or removed as `prepare` does, every other
    /// field copied as sent. A body with anything unusual (a key with escapes, a repeated
    /// `model`, `stream`, `stream_format` or `stream_options`) and other providers' bodies take
    /// the `Value` path. A body that is not JSON is refused with `invalid_json`.
    ///
    /// ```
    /// use tower_llm_stream::provider::Endpoint;
    /// use tower_llm_stream::provider::Providers;
    ///
    /// let vars = [("OPENAI_API_KEY".to_owned(), "sk-test".to_owned())];
    /// let providers = Providers::from_vars(vars).unwrap();
    /// let route = providers.route("openai/gpt-4o-mini").unwrap();
    /// let body = br#"{"model":"openai/gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Hi"}]}"#;
    /// let upstream = route.prepare_bytes(Endpoint::ChatCompletions, body).unwrap();
    /// assert_eq!(
    ///     upstream.request.body().as_ref(),
    ///     br#"{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Hi"}],"stream_options":{"include_usage":true}}"#
    /// );
    /// ```
    pub fn prepare_bytes(
        &self,
        endpoint: Endpoint,
        body: &[u8],
    ) -> Result<UpstreamRequest, RequestError> {
        if self.provider.kind() == ProviderKind::OpenAiCompatible {
            if let Some(prepared) = self.rewrite(endpoint, body) {
                return prepared;
            }
        }
        let body: Value = serde_json::from_slice(body).map_err(|e| {
            RequestError::bad_request(
                "invalid_json",
                format!("the request body is not valid JSON: {e}"),
            )
        })?;
        self.prepare(endpoint, body)
    }

    /// The OpenAI-compatible body rewritten field by field; `None`: take the `Value` path.
    fn rewrite(
        &self,
        endpoint: Endpoint,
        body: &[u8],
    ) -> Option<Result<UpstreamRequest, RequestError>> {
        const WATCHED: [&str; 4] = ["model", "stream", "stream_format", "stream_options"];
        let mut fields: Vec<(&str, &RawValue)> = Vec::with_capacity(16);
        let visited = for_each_entry(body, |key, value| {
            if WATCHED.contains(&key) && fields.iter().any(|(seen, _)| *seen == key) {
                return false;
            }
            fields.push((key, value));
            true
        });
        if visited != Some(true) {
            return None;
        }
        let field = |name: &str| fields.iter().find(|(key, _)| *key == name).map(|f| f.1);
        if let Some(stream) =
            field("stream").filter(|s| !matches!(s.get(), "true" | "false" | "null"))
        {
            return Some(Err(not_a_boolean(stream.get())));
        }
        let stream = match endpoint {
            Endpoint::Speech => field("stream_format")
                .and_then(raw_string)
                .is_some_and(|format| format == "sse"),
            _ => field("stream").is_some_and(|s| s.get() == "true"),
        };
        let head = match self.request_head(endpoint, stream) {
            Ok(head) => head,
            Err(e) => return Some(Err(e)),
        };
        let options = self.stream_options(endpoint, stream);
        let mut out = Vec::with_capacity(body.len() + 48);
        out.push(b'{');
        let model = serde_json::to_string(self.model).ok()?;
        for (key, value) in &fields {
            match (*key, options) {
                ("model", _) => {
                    push_key(&mut out, 1, key);
                    out.extend_from_slice(model.as_bytes());
                }
                ("stream_options", StreamOptions::Remove) => {}
                ("stream_options", StreamOptions::SetIncludeUsage) => {
                    push_key(&mut out, 1, key);
                    include_usage(&mut out, value)?;
                }
                _ => {
                    push_key(&mut out, 1, key);
                    out.extend_from_slice(value.get().as_bytes());
                }
            }
        }
        if field("model").is_none() {
            push_key(&mut out, 1, "model");
            out.extend_from_slice(model.as_bytes());
        }
        if options == StreamOptions::SetIncludeUsage && field("stream_options").is_none() {
            push_key(&mut out, 1, "stream_options");
            out.extend_from_slice(b"{\"include_usage\":true}");
        }
        out.push(b'}');
        Some(self.upstream_request(head, Bytes::from(out), endpoint, stream))
    }
}

/// See [`Route::stream_options`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamOptions {
    SetIncludeUsage,
    Remove,
    Keep,
}

fn not_a_boolean(stream: impl std::fmt::Display) -> RequestError {
    RequestError::bad_request(
        "invalid_request",
        format!("stream must be a boolean, not {stream}"),
    )
}

/// Writes `"key":` into a JSON object being written, after a comma unless the object's first
/// field starts at `first_at`.
fn push_key(out: &mut Vec<u8>, first_at: usize, key: &str) {
    if out.len() > first_at {
        out.push(b',');
    }
    out.push(b'"');
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
}

/// `stream_options` with `include_usage: true`: set in place, or added last; an options value
/// that is not an object is replaced. `None`: a key with escapes (take the `Value` path).
fn include_usage(out: &mut Vec<u8>, options: &RawValue) -> Option<()> {
    out.push(b'{');
    let start = out.len();
    let mut set = false;
    if options.get().starts_with('{') {
        let visited = for_each_entry(options.get().as_bytes(), |key, value| {
            push_key(out, start, key);
            if key == "include_usage" {
                out.extend_from_slice(b"true");
                set = true;
            } else {
                out.extend_from_slice(value.get().as_bytes());
            }
            true
        });
        if visited != Some(true) {
            return None;
        }
    }
    if !set {
        push_key(out, start, "include_usage");
        out.extend_from_slice(b"true");
    }
    out.push(b'}');
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::{Provider, Providers};
    use http::StatusCode;
    use http::header::AUTHORIZATION;

    fn providers() -> Providers {
        Providers::from_vars(
            [
                ("OPENAI_API_KEY", "sk-o"),
                ("MISTRAL_API_KEY", "sk-m"),
                ("GEMINI_API_KEY", "g-key"),
                ("COHERE_API_KEY", "co-key"),
                ("OLLAMA_BASE_URL", "http://127.0.0.1:11434"),
                ("ANTHROPIC_API_KEY", "sk-a"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        )
        .unwrap()
    }

    fn body(upstream: &UpstreamRequest) -> Value {
        serde_json::from_slice(upstream.request.body()).unwrap()
    }

    /// Bodies of every shape through both paths, for providers that add `include_usage` and
    /// one that does not: the same JSON, head, stream and aggregate flags, or the same error.
    #[test]
    fn prepare_bytes_gives_what_prepare_gives() {
        let providers = providers();
        let bodies = [
            r#"{"model":"x/y","stream":true,"messages":[{"role":"user","content":"Hi"}]}"#,
            r#"{"messages":[],"model":"x/y","stream":true,"stream_options":{"x":1,"include_usage":false},"n":2}"#,
            r#"{"model":"x/y","stream":true,"stream_options":null}"#,
            r#"{"model":"x/y","stream":true,"stream_options":{}}"#,
            r#"{ "model" : "x/y" , "stream" : false , "stream_options" : { "include_usage" : true } }"#,
            r#"{"stream":true,"temperature":0.5,"tools":[{"type":"function"}]}"#,
            r#"{"model":"x/y","stream":"yes"}"#,
            r#"{"model":"x/y","stream":[1, 2]}"#,
            r#"{"model":"x/y","stream":null,"input":"caf\u00e9 \"q\""}"#,
            r#"{"model":"x/y","model":"z","stream":true}"#,
            r#"{"mod\u0065l":"x/y","stream":true}"#,
            r#"{"model":"x/y","stream":true,"stream_options":{"incl\u0075de_usage":false}}"#,
            r#"{"model":"x/y","stream_format":"sse","voice":"alloy"}"#,
        ];
        let endpoints = [
            Endpoint::ChatCompletions,
            Endpoint::Completions,
            Endpoint::Responses,
            Endpoint::Speech,
        ];
        for model in [
            "openai/gpt-4o-mini",
            "mistral/mistral-small",
            "gemini/gemini-2.5-pro",
        ] {
            let route = providers.route(model).unwrap();
            for text in bodies {
                for endpoint in endpoints {
                    let value: Value = serde_json::from_str(text).unwrap();
                    let full = route.prepare(endpoint, value);
                    let bytes = route.prepare_bytes(endpoint, text.as_bytes());
                    let context = format!("{model} {endpoint:?} {text}");
                    match (full, bytes) {
                        (Ok(full), Ok(bytes)) => {
                            assert_eq!(body(&full), body(&bytes), "{context}");
                            assert_eq!(full.request.uri(), bytes.request.uri(), "{context}");
                            assert_eq!(
                                full.request.headers(),
                                bytes.request.headers(),
                                "{context}"
                            );
                            assert_eq!(
                                (full.stream, full.aggregate),
                                (bytes.stream, bytes.aggregate),
                                "{context}"
                            );
                        }
                        (Err(full), Err(bytes)) => {
                            assert_eq!(
                                (full.code, full.status),
                                (bytes.code, bytes.status),
                                "{context}"
                            );
                            assert_eq!(
                                full.message.replace(' ', ""),
                                bytes.message.replace(' ', ""),
                                "{context}"
                            );
                        }
                        (full, bytes) => panic!("{context}: {full:?} vs {bytes:?}"),
                    }
                }
            }
        }
        let route = providers.route("openai/gpt-4o-mini").unwrap();
        let rewritten = |i: usize| route.rewrite(Endpoint::ChatCompletions, bodies[i].as_bytes());
        assert!(
            (0..=8).all(|i| rewritten(i).is_some()),
            "usual bodies are rewritten"
        );
        assert!(
            (9..=11).all(|i| rewritten(i).is_none()),
            "unusual ones take the Value path"
        );
        let error = route
            .prepare_bytes(Endpoint::ChatCompletions, b"{\"model\":")
            .unwrap_err();
        assert_eq!(error.code, "invalid_json");
    }

    #[test]
    fn openai_compatible_bodies_get_the_model_and_include_usage() {
        let providers = providers();
        let route = providers.route("openai/gpt-4o-mini").unwrap();
        let chat = json!({"model": "openai/gpt-4o-mini", "stream": true, "stream_options": {"x": 1}, "messages": [], "custom": {"kept": true}});
        let up = route.prepare(Endpoint::ChatCompletions, chat).unwrap();
        assert_eq!(
            up.request.uri(),
            "https://api.openai.com/v1/chat/completions"
        );
        assert_eq!(up.request.headers()[AUTHORIZATION], "Bearer sk-o");
        assert!(up.request.headers()[AUTHORIZATION].is_sensitive());
        assert_eq!(up.request.headers()[ACCEPT], "text/event-stream");
        assert_eq!(
            body(&up),
            json!({"model": "gpt-4o-mini", "stream": true, "stream_options": {"x": 1, "include_usage": true}, "messages": [], "custom": {"kept": true}})
        );
        assert!(up.stream && !up.aggregate);
        assert!(matches!(up.dialect, AnyDialect::OpenAi(_)));

        let responses = route
            .prepare(Endpoint::Responses, json!({"stream": true, "input": "hi"}))
            .unwrap();
        assert_eq!(
            responses.request.uri(),
            "https://api.openai.com/v1/responses"
        );
        assert!(body(&responses).get("stream_options").is_none());
        assert!(matches!(responses.dialect, AnyDialect::Responses(_)));

        let speech = route
            .prepare(
                Endpoint::Speech,
                json!({"input": "hi", "voice": "alloy", "stream_format": "sse"}),
            )
            .unwrap();
        assert!(speech.stream);
        assert_eq!(
            speech.request.uri(),
            "https://api.openai.com/v1/audio/speech"
        );

        let plain = route
            .prepare(Endpoint::ChatCompletions, json!({"messages": []}))
            .unwrap();
        assert!(!plain.stream && !plain.aggregate);
        assert_eq!(plain.request.headers()[ACCEPT], "application/json");
        assert!(body(&plain).get("stream_options").is_none());

        // Mistral rejects stream_options.
        let mistral = providers.route("mistral/mistral-small").unwrap();
        let up = mistral
            .prepare(
                Endpoint::ChatCompletions,
                json!({"stream": true, "stream_options": {"include_usage": true}, "messages": []}),
            )
            .unwrap();
        assert!(body(&up).get("stream_options").is_none());
    }

    #[test]
    fn translated_providers_always_stream_and_authenticate_their_way() {
        let providers = providers();
        let chat = json!({"messages": [{"role": "user", "content": "hi"}]});
        let cases = [
            (
                "anthropic/claude-haiku-4-5",
                "https://api.anthropic.com/v1/messages",
                "x-api-key",
                "sk-a",
            ),
            (
                "gemini/models/gemini-2.5-flash",
                "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
                "x-goog-api-key",
                "g-key",
            ),
            (
                "cohere/command-a-03-2025",
                "https://api.cohere.com/v2/chat",
                "authorization",
                "Bearer co-key",
            ),
        ];
        for (model, url, header, value) in cases {
            let up = providers
                .route(model)
                .unwrap()
                .prepare(Endpoint::ChatCompletions, chat.clone())
                .unwrap();
            assert_eq!(up.request.uri(), url);
            assert_eq!(up.request.headers()[header], value);
            assert!(up.aggregate && !up.stream, "{model}");
            assert_eq!(up.request.headers()[ACCEPT], "text/event-stream");
            // Only the provider's own headers: no other provider's key.
            let auth: Vec<_> = ["authorization", "x-api-key", "x-goog-api-key"]
                .into_iter()
                .filter(|h| up.request.headers().contains_key(*h))
                .collect();
            assert_eq!(auth, [header], "{model}");
        }
        let ollama = providers
            .route("ollama/llama3.2")
            .unwrap()
            .prepare(Endpoint::ChatCompletions, chat.clone())
            .unwrap();
        assert_eq!(ollama.request.uri(), "http://127.0.0.1:11434/api/chat");
        assert!(!ollama.request.headers().contains_key(AUTHORIZATION));
        assert_eq!(ollama.request.headers()[ACCEPT], "application/x-ndjson");
        assert!(matches!(ollama.dialect, AnyDialect::Ollama(_)));
    }

    #[test]
    fn refusals() {
        let providers = providers();
        let anthropic = providers.route("anthropic/claude").unwrap();
        let error = anthropic
            .prepare(Endpoint::Responses, json!({"input": "x"}))
            .unwrap_err();
        assert_eq!(error.code, "unsupported_endpoint");
        assert!(error.message.contains("/v1/responses"), "{}", error.message);
        assert_eq!(
            anthropic
                .prepare(Endpoint::ChatCompletions, json!([1]))
                .unwrap_err()
                .code,
            "invalid_request"
        );
        let error = anthropic
            .prepare(
                Endpoint::ChatCompletions,
                json!({"stream": "yes", "messages": []}),
            )
            .unwrap_err();
        assert!(error.message.contains("boolean"));
        // A model that is a path is refused when routed, before any URL is built.
        assert_eq!(
            providers.route("gemini/../../etc").unwrap_err().code,
            "invalid_model"
        );
        let bad_key = Providers::new().with(
            Provider::new("p", ProviderKind::OpenAiCompatible, "http://127.0.0.1:1")
                .unwrap()
                .api_key("bad\nkey"),
        );
        let error = bad_key
            .route("p/m")
            .unwrap()
            .prepare(Endpoint::ChatCompletions, json!({}))
            .unwrap_err();
        assert_eq!(error.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!error.message.contains("bad"));
    }
}
