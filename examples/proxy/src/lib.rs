//! The example reverse proxy of tower-llm-stream, as a library: routing, request
//! preparation and the layer stack around the upstream call ([`Proxy`]), the server loop
//! ([`serve`]), the command line and the process ([`cli`]), the streams' Prometheus metrics
//! ([`metrics`], served at `GET /metrics`). The `llm-proxy` binary only sets up
//! logging and calls [`cli::run`]; tests and the benchmark tools use the same code.

pub mod background;
pub mod cli;
pub mod client_api;
pub mod coalesce;
pub mod conn;
pub mod demo;
pub mod listen;
pub mod logging;
pub mod metrics;
pub mod multipart;
#[cfg(feature = "otlp")]
pub mod otlp;
pub mod resume;
pub mod upstream;
pub mod util;

use bytes::{Bytes, BytesMut};
use client_api::{ClientRoute, api_error};
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use serde_json::{Value, json};
use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tower::{Layer, Service, ServiceExt};
use tower_http::decompression::Decompression;
use tower_llm_stream::fallback::{FailedAttempt, FallbackTargets};
use tower_llm_stream::observe::{ClientStall, StreamLabels};
use tower_llm_stream::provider::{AnyDialect, ClientApi, Endpoint, ProviderKind, chat_request};
use tower_llm_stream::provider::{ChatCompletionAggregator, Providers, RequestError, Route};
use tower_llm_stream::redact::{RedactBody, Secrets};
use tower_llm_stream::render::whole_response;
use tower_llm_stream::resume::{Numbering, Producers, Resumable, ResumeLayer, ResumeResponseBody};
use tower_llm_stream::sse::Decoder;
use tower_llm_stream::sse::is_event_stream;
use tower_llm_stream::timeout::{Shutdown, StreamTimeoutLayer};
use tower_llm_stream::{LlmStream, LlmStreamLayer};
use upstream::{TIMEOUT_HEADER, Upstream, UpstreamRequestBody};
use util::{ProxyBody, ReadError, TimedBody, error, json as json_response};

/// A client's request body, under the body timeout.
type ClientBody = TimedBody<Incoming>;

/// What the proxy is configured with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Head and idle timeout (`--timeout`, 30 s).
    pub timeout: Duration,
    /// The most a client may ask for with `x-request-timeout`.
    pub max_timeout: Duration,
    /// Largest JSON request body (413 above).
    pub max_body_bytes: usize,
    /// Largest transcription upload (413 above).
    pub max_upload_bytes: u64,
    /// The upstream providers (the demo provider is always added).
    pub providers: Providers,
    /// When set, clients must send `Authorization: Bearer <key>` (`PROXY_API_KEY`).
    pub api_key: Option<String>,
    /// Speak HTTP/2 to upstreams that can (`--upstream-http2`).
    pub upstream_http2: bool,
    /// Relay upstream responses as they come, without the layers (`--without-layers`): the
    /// benchmark's floor for what the HTTP work alone costs. Not for production.
    pub without_layers: bool,
    /// A connection that has not sent a whole request head within this is closed
    /// (`--header-timeout`, 10 s).
    pub header_timeout: Duration,
    /// A request body must arrive whole within this, else `408` (`--body-timeout`, 30 s).
    pub body_timeout: Duration,
    /// The most connections one [`serve`] holds open; more wait in the listen backlog
    /// (`--max-connections`, divided among the worker threads).
    pub max_connections: usize,
    /// The largest upstream answer folded into one JSON reply, else `502
    /// response_too_large` (`--max-response-bytes`, 64 MiB).
    pub max_response_bytes: usize,
    /// The longest a stream may last, then the `stream_deadline` error event
    /// (`--stream-deadline`, 30 min).
    pub stream_deadline: Duration,
    /// Per model (`provider/model`, as clients name it), the models tried in turn when it fails
    /// before its stream's first content event (`--fallback MODEL=FALLBACK,…`).
    pub fallbacks: std::collections::BTreeMap<String, Vec<String>>,
    /// The streams' Prometheus metrics, served at `GET /metrics` (a fresh registry by
    /// default). Clones share it: the worker threads' proxies, each built from a clone of the
    /// configuration, record into one registry, and one scrape shows them all.
    pub metrics: metrics::Metrics,
    /// Resumable streams (`--resumable`, `--resume-ttl`): `None` when off. Clones share the
    /// store, so a stream started on one worker thread can be resumed on any.
    pub resume: Option<resume::ResumeConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            timeout: Duration::from_secs(30),
            max_timeout: Duration::from_secs(600),
            max_body_bytes: 4 * 1024 * 1024,
            max_upload_bytes: 25 * 1024 * 1024,
            providers: Providers::new(),
            api_key: None,
            upstream_http2: false,
            without_layers: false,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections: conn::default_max_connections(),
            max_response_bytes: 64 * 1024 * 1024,
            stream_deadline: Duration::from_secs(30 * 60),
            fallbacks: std::collections::BTreeMap::new(),
            metrics: metrics::Metrics::default(),
            resume: None,
        }
    }
}

/// The providers requests can be routed to: the demo provider and the configured ones (a
/// configured `demo` replaces the built-in one).
pub fn routable(configured: &Providers) -> Providers {
    let mut providers = Providers::new().with(demo::provider());
    for provider in configured.iter() {
        providers.insert(provider.clone());
    }
    providers
}

/// The layers around the upstream call, outermost first; upstream bodies are decoded
/// (gzip, deflate, br, zstd) before the layers read them.
type Stack = LlmStream<Decompression<Upstream>, AnyDialect, metrics::Metrics>;

/// The proxy: cheap to clone, one per connection.
#[derive(Clone)]
pub struct Proxy {
    inner: Arc<Inner>,
    /// The connection's stall flag, handed to each stream's summary ([`Proxy::for_connection`]).
    stall: Option<ClientStall>,
}

struct Inner {
    config: Config,
    providers: Providers,
    stack: Stack,
    /// The upstream alone, with `--without-layers`.
    bare: Option<Upstream>,
    /// Ends the open streams when the server's grace period is over.
    shutdown: Shutdown,
    /// The producers of this worker's resumable streams: a shutdown waits for them too.
    producers: Producers,
    /// Every configured secret: never relayed from an upstream.
    secrets: Secrets,
}

impl Proxy {
    pub fn new(config: Config) -> Self {
        let providers = routable(&config.providers);
        let upstream = Upstream::new(config.upstream_http2);
        let bare = config.without_layers.then(|| upstream.clone());
        let shutdown = Shutdown::new();
        let secrets = logging::secrets(&config);
        // The configured models get their own series; others are capped per provider.
        for provider in providers.iter() {
            config
                .metrics
                .allow_models(provider.name(), provider.model_list());
        }
        let stack = LlmStreamLayer::new()
            .dialect(AnyDialect::default())
            .on_stream_end(config.metrics.clone())
            .timeout_layer(
                StreamTimeoutLayer::new()
                    .timeout(config.timeout)
                    .total(config.stream_deadline)
                    .override_header(TIMEOUT_HEADER.clone(), config.max_timeout)
                    .shutdown(shutdown.clone()),
            )
            .layer(Decompression::new(upstream));
        Proxy {
            stall: None,
            inner: Arc::new(Inner {
                config,
                providers,
                stack,
                bare,
                shutdown,
                secrets,
                producers: Producers::new(),
            }),
        }
    }

    /// The proxy for one client connection: its streams are recorded as `client_stalled` when
    /// the connection is dropped for not reading (`stall` marked).
    pub fn for_connection(&self, stall: ClientStall) -> Proxy {
        Proxy {
            inner: self.inner.clone(),
            stall: Some(stall),
        }
    }

    /// Ends every open stream with the `server_shutting_down` error event (in each client's
    /// API), and every request still waiting for its upstream with a `503`.
    pub fn end_streams(&self) {
        self.inner.shutdown.trigger();
    }

    /// Answers one request. Never fails: every problem is an HTTP error response or, once a
    /// stream has started, an error event.
    pub async fn handle(self, request: Request<Incoming>) -> Response<ProxyBody> {
        let started = tokio::time::Instant::now();
        let method = request.method().clone();
        // Cut: a path is the client's, of any length.
        let path = util::cut(request.uri().path(), 256).to_owned();
        let body_timeout = self.inner.config.body_timeout;
        let request = request.map(|body| TimedBody::new(body, body_timeout));
        // Boxed: hyper keeps a slot the size of this future for the connection's whole life,
        // and routing's state (request parsing, uploads, the call) is kilobytes; boxed, it is
        // freed when the response head is ready.
        let response = Box::pin(self.route(request)).await;
        let status = response.status();
        // Streams log their own line ("stream ended") when they end; this line is for the
        // requests that never reached a provider.
        if response.extensions().get::<Forwarded>().is_none() {
            let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
            if status.is_client_error() || status.is_server_error() {
                tracing::warn!(%method, %path, status = status.as_u16(), elapsed_ms, "request refused");
            } else {
                tracing::debug!(%method, %path, status = status.as_u16(), elapsed_ms, "request served");
            }
        }
        response
    }

    async fn route(self, request: Request<ClientBody>) -> Response<ProxyBody> {
        let path = request.uri().path();
        if path == "/" || path == "/index.html" {
            return match *request.method() {
                Method::GET | Method::HEAD => playground(),
                _ => not_allowed("GET"),
            };
        }
        if path == "/health" {
            return match *request.method() {
                Method::GET | Method::HEAD => json_response(StatusCode::OK, r#"{"status":"ok"}"#),
                _ => not_allowed("GET"),
            };
        }
        if path == "/metrics" {
            // Behind PROXY_API_KEY like /v1/models: the metrics name the models in use.
            if let Some(refused) = self.check_key(&request, ClientApi::ChatCompletions) {
                return refused;
            }
            return match *request.method() {
                Method::GET | Method::HEAD => self.metrics(),
                _ => not_allowed("GET"),
            };
        }
        if let Some(id) = path.strip_prefix(resume::STREAMS_PATH) {
            if let Some(refused) = self.check_key(&request, ClientApi::ChatCompletions) {
                return refused;
            }
            let id = id.trim_end_matches('/').to_owned();
            return self.stream_route(request, id).await;
        }
        if let Some(rest) = path.strip_prefix(background::RESPONSES_PATH)
            && !rest.trim_end_matches('/').is_empty()
        {
            if let Some(refused) = self.check_key(&request, ClientApi::Responses) {
                return refused;
            }
            let Some(resume) = self.inner.config.resume.as_ref() else {
                return error(StatusCode::NOT_FOUND, "response_not_found", background::OFF);
            };
            let limit = self.inner.config.max_response_bytes;
            let producers = &self.inner.producers;
            return background::route(
                resume,
                producers,
                rest,
                request.method(),
                request.uri().query(),
                limit,
            )
            .await;
        }
        if let Some(client_route) = ClientRoute::parse(path) {
            let api = client_route.api();
            if let Some(refused) = self.check_key(&request, api) {
                return refused;
            }
            return Box::pin(self.client_api(client_route, request)).await;
        }
        let endpoint = match path.trim_end_matches('/') {
            "/v1/models" => None,
            "/v1/chat/completions" => Some(Endpoint::ChatCompletions),
            "/v1/completions" => Some(Endpoint::Completions),
            "/v1/responses" => Some(Endpoint::Responses),
            "/v1/audio/speech" => Some(Endpoint::Speech),
            "/v1/audio/transcriptions" => Some(Endpoint::Transcriptions),
            _ => {
                return error(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    &format!(
                        "no endpoint {path}: see /v1/chat/completions, /v1/completions, /v1/responses, /v1/messages (Anthropic), /v1beta/models/MODEL:streamGenerateContent (Gemini), /v1/audio/speech, /v1/audio/transcriptions, /v1/models"
                    ),
                );
            }
        };
        if let Some(refused) = self.check_key(&request, ClientApi::ChatCompletions) {
            return refused;
        }
        let Some(endpoint) = endpoint else {
            return match *request.method() {
                Method::GET | Method::HEAD => self.models(),
                _ => not_allowed("GET"),
            };
        };
        if request.method() != Method::POST {
            return not_allowed("POST");
        }
        if endpoint == Endpoint::Transcriptions {
            if let Some(boundary) = request
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .and_then(multipart::boundary)
                .map(str::to_owned)
            {
                return Box::pin(self.upload(request, boundary)).await;
            }
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "/v1/audio/transcriptions takes a multipart/form-data upload",
            );
        }
        self.json_request(endpoint, request).await
    }

    /// The Prometheus scrape: the streams' metrics as [`metrics::Metrics::render`] writes them.
    fn metrics(&self) -> Response<ProxyBody> {
        Response::builder()
            .header(CONTENT_TYPE, metrics::CONTENT_TYPE)
            .header(http::header::CACHE_CONTROL, "no-store")
            .body(util::full(self.inner.config.metrics.render()))
            .expect("a valid response")
    }

    fn models(&self) -> Response<ProxyBody> {
        let data: Vec<Value> = self
            .inner
            .providers
            .iter()
            .flat_map(|p| {
                p.model_list().iter().map(move |m| {
                    json!({"id": format!("{}/{m}", p.name()), "object": "model", "created": 0, "owned_by": p.name()})
                })
            })
            .collect();
        json_response(
            StatusCode::OK,
            json!({"object": "list", "data": data}).to_string(),
        )
    }

    async fn json_request(
        self,
        endpoint: Endpoint,
        request: Request<ClientBody>,
    ) -> Response<ProxyBody> {
        let limit = self.inner.config.max_body_bytes;
        if util::content_length(request.headers()).is_some_and(|n| n > limit as u64) {
            return too_large(limit as u64);
        }
        let resumable = match resume::asked(self.inner.config.resume.as_ref(), request.headers()) {
            Ok(true) if !matches!(endpoint, Endpoint::ChatCompletions | Endpoint::Completions) => {
                return resume::not_here(request.uri().path());
            }
            Ok(resumable) => resumable,
            Err(refused) => return refused.response(),
        };
        let (parts, body) = request.into_parts();
        let body = match util::read_limited(body, limit).await {
            Ok(body) => body,
            Err(ReadError::TooLarge) => return too_large(limit as u64),
            Err(ReadError::TimedOut(limit)) => {
                return body_timed_out(ClientApi::ChatCompletions, limit);
            }
            Err(ReadError::Failed(e)) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    &format!("the request body could not be read: {e}"),
                );
            }
        };
        // Read for its model only (borrowed); the body is forwarded from its bytes.
        let object = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
        let (model, background) = match serde_json::from_slice::<ModelField<'_>>(&body)
            .ok()
            .filter(|_| object)
        {
            Some(ModelField { model, background }) => (
                model.and_then(|m| serde_json::from_str::<Cow<'_, str>>(m.get()).ok()),
                background,
            ),
            None => return invalid_json(&body),
        };
        let background = match endpoint {
            Endpoint::Responses => {
                match background::asked(self.inner.config.resume.as_ref(), background) {
                    Ok(background) => background,
                    Err(refused) => return refused.response(),
                }
            }
            _ => false,
        };
        let resumable = if background {
            Some(Numbering::SequenceNumbers)
        } else {
            resumable.then_some(Numbering::SseIds)
        };
        let Some(model) = model else {
            return error(
                StatusCode::BAD_REQUEST,
                "missing_model",
                "the request needs a \"model\" string, named provider/model (e.g. demo/echo)",
            );
        };
        let model = model.into_owned();
        let api = match endpoint {
            Endpoint::Completions => ClientApi::Completions,
            Endpoint::Responses => ClientApi::Responses,
            _ => ClientApi::ChatCompletions,
        };
        let ask = Ask {
            api,
            endpoint: Some(endpoint),
            headers: parts.headers,
            body,
            map: None,
            stream: None,
            gemini: None,
            resumable,
        };
        self.answer(ask, model).await
    }

    /// `None` when the request may pass: no `PROXY_API_KEY`, or the client sent it in any
    /// API's header. Else the `401` in the client API's shape.
    fn check_key(
        &self,
        request: &Request<ClientBody>,
        api: ClientApi,
    ) -> Option<Response<ProxyBody>> {
        let expected = self.inner.config.api_key.as_ref()?;
        let given = client_api::client_key(request.headers(), request.uri().query()).unwrap_or("");
        if util::same_secret(given.as_bytes(), expected.as_bytes()) {
            return None;
        }
        Some(api_error(
            api,
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
            "this proxy needs its PROXY_API_KEY: send `Authorization: Bearer <key>`, `x-api-key` (Anthropic) or `x-goog-api-key` (Gemini)",
        ))
    }

    /// An Anthropic Messages or Gemini request.
    async fn client_api(
        self,
        route: ClientRoute,
        request: Request<ClientBody>,
    ) -> Response<ProxyBody> {
        let api = route.api();
        let count_tokens = route == ClientRoute::AnthropicCountTokens;
        let (model, stream) = match route {
            ClientRoute::Unknown(_) => {
                let path = request.uri().path();
                let see = if api == ClientApi::Gemini {
                    "/v1beta/models/MODEL:streamGenerateContent?alt=sse or :generateContent"
                } else {
                    "/v1/messages"
                };
                return api_error(
                    api,
                    StatusCode::NOT_FOUND,
                    "not_found",
                    &format!("no endpoint {path}: see {see}"),
                );
            }
            ClientRoute::AnthropicMessages | ClientRoute::AnthropicCountTokens => (None, None),
            ClientRoute::Gemini { model, stream } => (Some(model), Some(stream)),
        };
        if request.method() != Method::POST {
            let mut response = api_error(
                api,
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "use POST",
            );
            response
                .headers_mut()
                .insert(http::header::ALLOW, HeaderValue::from_static("POST"));
            return response;
        }
        let sse = client_api::wants_sse(request.uri().query());
        let limit = self.inner.config.max_body_bytes;
        let (parts, body) = request.into_parts();
        let body = match util::read_limited(body, limit).await {
            Ok(body) => body,
            Err(ReadError::TooLarge) => {
                return api_error(
                    api,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "request_too_large",
                    &format!("the request body is larger than this proxy's limit of {limit} bytes"),
                );
            }
            Err(ReadError::TimedOut(limit)) => return body_timed_out(api, limit),
            Err(ReadError::Failed(e)) => {
                return api_error(
                    api,
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    &format!("the request body could not be read: {e}"),
                );
            }
        };
        if count_tokens {
            return self.count_tokens(&parts.headers, &body).await;
        }
        // Gemini without `alt=sse` streams a JSON array: the whole answer as its one element.
        let gemini = stream.map(|stream| GeminiStream { stream, sse });
        self.translated(api, parts.headers, body, model, gemini)
            .await
    }

    /// A request in a client API other than OpenAI chat, translated into the standard chat
    /// request, sent to any provider, and answered in the client's API: streamed through the
    /// render layer, or folded into the API's whole answer.
    async fn translated(
        self,
        api: ClientApi,
        headers: http::HeaderMap,
        body: Bytes,
        model: Option<String>,
        gemini: Option<GeminiStream>,
    ) -> Response<ProxyBody> {
        let map = match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(map)) => map,
            Ok(_) => {
                return api_error(
                    api,
                    StatusCode::BAD_REQUEST,
                    "invalid_json",
                    "the request body must be a JSON object",
                );
            }
            Err(e) => {
                return api_error(
                    api,
                    StatusCode::BAD_REQUEST,
                    "invalid_json",
                    &format!("the request body is not valid JSON: {e}"),
                );
            }
        };
        let model = match model
            .or_else(|| map.get("model").and_then(Value::as_str).map(str::to_owned))
        {
            Some(model) => self.default_provider(api, model),
            None => {
                return api_error(
                    api,
                    StatusCode::BAD_REQUEST,
                    "missing_model",
                    "the request needs a \"model\" string, named provider/model (e.g. demo/echo)",
                );
            }
        };
        let stream = match gemini {
            Some(gemini) => gemini.stream && gemini.sse,
            None => map.get("stream").and_then(Value::as_bool) == Some(true),
        };
        let ask = Ask {
            api,
            endpoint: None,
            headers,
            body,
            map: Some(map),
            stream: Some(stream),
            gemini,
            resumable: None,
        };
        self.answer(ask, model).await
    }

    /// Sends a client's request to its model's target, and to the model's fallbacks
    /// (`--fallback`) while the stream has not committed; answers in the client's API, streamed
    /// or folded into one reply.
    async fn answer(self, ask: Ask, model: String) -> Response<ProxyBody> {
        let api = ask.api;
        let fallbacks = self.inner.config.fallbacks.get(&model).cloned();
        let (mut request, stream) = match self.prepare(&ask, &model) {
            Ok(prepared) => prepared,
            Err(e) => return in_api(api, refused(e)).await,
        };
        match ask.resumable {
            Some(Numbering::SequenceNumbers) if !stream => return background::not_a_stream(),
            Some(_) if !stream => return resume::not_a_stream(),
            _ => {}
        }
        // The targets after it prepare the request as the first one read it.
        let mut ask = ask;
        ask.stream = Some(stream);
        let ask = Arc::new(ask);
        if let Some(fallbacks) = fallbacks {
            // Every target renders into the client's API (a native stream is recognised and
            // passed as it is), whichever serves.
            if stream && api != ClientApi::ChatCompletions {
                request.extensions_mut().insert(api);
            }
            let mut targets = FallbackTargets::new();
            for fallback in fallbacks {
                let (proxy, ask) = (self.clone(), ask.clone());
                targets = targets.then(move || {
                    let (mut request, _) = proxy.prepare(&ask, &fallback).map_err(|e| {
                        let (provider, model) = fallback.split_once('/').unwrap_or(("", &fallback));
                        let labels = StreamLabels::new(provider.to_owned(), model.to_owned());
                        FailedAttempt::new(Some(labels), format!("{} ({})", e.code, e.message))
                    })?;
                    if stream && ask.api != ClientApi::ChatCompletions {
                        request.extensions_mut().insert(ask.api);
                    }
                    Ok(request)
                });
            }
            request.extensions_mut().insert(targets);
        }
        if let Some(numbering) = ask.resumable {
            return self.forward_resumable(request, numbering).await;
        }
        let response = self.forward(request).await;
        if stream {
            return response;
        }
        // A whole answer: an upstream that could only stream (a translated provider) is folded.
        let served = response.headers().get(&SERVED_BY).cloned();
        let mut response = match fold(response, self.inner.config.max_response_bytes).await {
            Ok(completion) => {
                let mut whole = whole_response(api, &completion);
                if ask.gemini.is_some_and(|g| g.stream) {
                    whole = Value::Array(vec![whole]);
                }
                let mut response = json_response(StatusCode::OK, whole.to_string());
                response.extensions_mut().insert(Forwarded);
                response
            }
            Err(response) => in_api(api, response).await,
        };
        // A reply made here from the stream still names the target that answered.
        if let Some(served) = served {
            response.headers_mut().entry(&SERVED_BY).or_insert(served);
        }
        response
    }

    /// The upstream request for one target (`provider/model`) of a client's request: the
    /// OpenAI-compatible body rewritten, a native request forwarded as it is, or the request
    /// translated into the standard chat request for the target's API.
    /// Also whether the client asked for a stream.
    fn prepare(
        &self,
        ask: &Ask,
        model: &str,
    ) -> Result<(Request<UpstreamRequestBody>, bool), RequestError> {
        let route = self.inner.providers.route(model)?;
        let openai = route.provider.kind() == ProviderKind::OpenAiCompatible;
        let upstream = match ask.endpoint {
            // Responses and completions from a provider that has only chat: translated.
            Some(Endpoint::Completions | Endpoint::Responses) if !openai => None,
            Some(endpoint) => Some(route.prepare_bytes(endpoint, &ask.body)?),
            None => None,
        };
        let (upstream, api, stream) = match upstream {
            Some(upstream) => {
                let stream = ask.stream.unwrap_or(upstream.stream);
                (upstream, None, stream)
            }
            None => {
                let parsed;
                let map = match &ask.map {
                    Some(map) => map,
                    None => match serde_json::from_slice::<Value>(&ask.body) {
                        Ok(Value::Object(map)) => {
                            parsed = map;
                            &parsed
                        }
                        _ => {
                            return Err(RequestError::bad_request(
                                "invalid_json",
                                "the request body must be a JSON object",
                            ));
                        }
                    },
                };
                let stream = ask
                    .stream
                    .unwrap_or_else(|| map.get("stream").and_then(Value::as_bool) == Some(true));
                let native = stream.then(|| route.prepare_native(ask.api, map.clone()));
                match native.flatten() {
                    // The client speaks the provider's own API: forwarded as it is.
                    Some(native) => (native?, Some(ask.api), stream),
                    None => {
                        let mut chat = chat_request(ask.api, map, true)?;
                        chat["model"] = model.into();
                        let upstream = route.prepare(Endpoint::ChatCompletions, chat)?;
                        (upstream, stream.then_some(ask.api), stream)
                    }
                }
            }
        };
        let labels = StreamLabels::new(route.provider.name().to_owned(), route.model.to_owned());
        let native_anthropic = matches!(upstream.dialect, AnyDialect::AnthropicNative(_));
        let (mut head, body) = upstream.request.into_parts();
        copy_timeout_header(&ask.headers, &mut head.headers);
        if native_anthropic && let Some(beta) = ask.headers.get("anthropic-beta") {
            head.headers.insert("anthropic-beta", beta.clone());
        }
        let mut request = Request::from_parts(head, full_request_body(body));
        request.extensions_mut().insert(upstream.dialect);
        request.extensions_mut().insert(labels);
        if let Some(api) = api {
            request.extensions_mut().insert(api);
        }
        Ok((request, stream))
    }

    /// Anthropic's `count_tokens`, forwarded to an Anthropic provider (the only one that can
    /// count a Messages request); for a model of another provider a `501` that says so.
    async fn count_tokens(self, headers: &http::HeaderMap, body: &[u8]) -> Response<ProxyBody> {
        let api = ClientApi::AnthropicMessages;
        let Ok(Value::Object(mut map)) = serde_json::from_slice::<Value>(body) else {
            return api_error(
                api,
                StatusCode::BAD_REQUEST,
                "invalid_json",
                "the request body must be a JSON object",
            );
        };
        let Some(model) = map.get("model").and_then(Value::as_str).map(str::to_owned) else {
            return api_error(
                api,
                StatusCode::BAD_REQUEST,
                "missing_model",
                "the request needs a \"model\" string",
            );
        };
        let model = self.default_provider(api, model);
        let route = match self.inner.providers.route(&model) {
            Ok(route) => route,
            Err(e) => return in_api(api, refused(e)).await,
        };
        if route.provider.kind() != ProviderKind::Anthropic {
            return api_error(
                api,
                StatusCode::NOT_IMPLEMENTED,
                "not_implemented",
                &format!(
                    "count_tokens needs an Anthropic provider; {:?} speaks another API and has no count this proxy can translate",
                    route.provider.name()
                ),
            );
        }
        map.insert("model".into(), route.model.into());
        map.remove("stream");
        let head = match route.request_head(Endpoint::ChatCompletions, false) {
            Ok(head) => head,
            Err(e) => return in_api(api, refused(e)).await,
        };
        let uri = format!(
            "{}/count_tokens",
            head.uri_ref().map(ToString::to_string).unwrap_or_default()
        );
        let mut request =
            match head
                .uri(uri)
                .header(CONTENT_TYPE, "application/json")
                .body(full_request_body(Bytes::from(
                    Value::Object(map).to_string(),
                ))) {
                Ok(request) => request,
                Err(e) => {
                    return api_error(
                        api,
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "internal_error",
                        &e.to_string(),
                    );
                }
            };
        request.headers_mut().insert(
            http::header::ACCEPT,
            HeaderValue::from_static("application/json"),
        );
        copy_timeout_header(headers, request.headers_mut());
        if let Some(beta) = headers.get("anthropic-beta") {
            request.headers_mut().insert("anthropic-beta", beta.clone());
        }
        request.extensions_mut().insert(StreamLabels::new(
            route.provider.name().to_owned(),
            route.model.to_owned(),
        ));
        request.extensions_mut().insert(api);
        self.forward(request).await
    }

    /// A model without a provider goes to the client API's own provider when it is
    /// configured (the Anthropic SDK's `claude-…` to `anthropic`).
    fn default_provider(&self, api: ClientApi, model: String) -> String {
        let own = match api {
            ClientApi::AnthropicMessages => "anthropic",
            ClientApi::Gemini => "gemini",
            _ => "openai",
        };
        if !model.contains('/') && self.inner.providers.get(own).is_some() {
            return format!("{own}/{model}");
        }
        model
    }

    /// A transcription upload: routed by its `model` field, streamed upstream.
    async fn upload(self, request: Request<ClientBody>, boundary: String) -> Response<ProxyBody> {
        let limit = self.inner.config.max_upload_bytes;
        if util::content_length(request.headers()).is_some_and(|n| n > limit) {
            return too_large(limit);
        }
        let (parts, mut body) = request.into_parts();
        let mut finder = multipart::FieldFinder::new(&boundary, "model");
        let mut prefix = BytesMut::new();
        let (start, end) = loop {
            match finder.poll(&prefix) {
                Ok(Some(range)) => break range,
                Ok(None) => {}
                Err(multipart::FormError::Missing) => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "missing_model",
                        "the form has no \"model\" field",
                    );
                }
                Err(multipart::FormError::Malformed(why)) => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
                        &format!("malformed multipart form: {why}"),
                    );
                }
            }
            if prefix.len() as u64 > limit {
                return too_large(limit);
            }
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        prefix.extend_from_slice(&data);
                    }
                }
                Some(Err(e)) => {
                    return match ReadError::from_body(e) {
                        ReadError::TimedOut(limit) => {
                            body_timed_out(ClientApi::ChatCompletions, limit)
                        }
                        _ => error(
                            StatusCode::BAD_REQUEST,
                            "invalid_request",
                            "the upload could not be read",
                        ),
                    };
                }
                None => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "missing_model",
                        "the form ended before a complete \"model\" field",
                    );
                }
            }
        };
        let Ok(model) = std::str::from_utf8(&prefix[start..end]).map(|m| m.trim().to_owned())
        else {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_model",
                "the model field is not UTF-8",
            );
        };
        let providers = &self.inner.providers;
        let route: Route<'_> = match providers.route(&model) {
            Ok(route) => route,
            Err(e) => return refused(e),
        };
        let head = match route.request_head(Endpoint::Transcriptions, true) {
            Ok(head) => head,
            Err(e) => return refused(e),
        };
        let mut rewritten = BytesMut::with_capacity(prefix.len());
        rewritten.extend_from_slice(&prefix[..start]);
        rewritten.extend_from_slice(route.model.as_bytes());
        rewritten.extend_from_slice(&prefix[end..]);
        let budget = limit.saturating_sub(prefix.len() as u64);
        let body = multipart::PrefixedBody::new(rewritten, body, budget).boxed_unsync();
        let content_type = parts.headers.get(CONTENT_TYPE).cloned().expect("checked");
        let Ok(mut request) = head.header(CONTENT_TYPE, content_type).body(body) else {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "could not build the upstream request",
            );
        };
        copy_timeout_header(&parts.headers, request.headers_mut());
        request
            .extensions_mut()
            .insert(route.dialect(Endpoint::Transcriptions));
        request.extensions_mut().insert(StreamLabels::new(
            route.provider.name().to_owned(),
            route.model.to_owned(),
        ));
        self.forward(request).await
    }

    /// Sends a prepared request through the layers (or, with `--without-layers`, straight
    /// to the upstream).
    fn forward(
        &self,
        mut request: Request<UpstreamRequestBody>,
    ) -> impl Future<Output = Response<ProxyBody>> + Send + 'static {
        if let Some(stall) = &self.stall {
            request.extensions_mut().insert(stall.clone());
        }
        // Boxed here, where its types are concrete: inside an async block the compiler cannot
        // prove the layered future `Send` (rust-lang/rust#102211).
        let asked = request.extensions().get::<StreamLabels>().cloned();
        let call = match &self.inner.bare {
            // `Upstream` is always ready, and its future is boxed already.
            Some(upstream) => Call::Bare(upstream.clone().call(request)),
            None => Call::Layered(Box::pin(self.inner.stack.clone().oneshot(request))),
        };
        let secrets = self.inner.secrets.clone();
        async move {
            let mut response = match call {
                Call::Layered(call) => finish_forward(call.await),
                Call::Bare(call) => finish_forward(call.await),
            };
            // The target that answered: a fallback's labels on the response, else the request's.
            let served = response
                .extensions()
                .get::<StreamLabels>()
                .or(asked.as_ref());
            if let Some(served) = served {
                let name = format!("{}/{}", served.system, served.model);
                if let Ok(value) = HeaderValue::from_str(&name) {
                    response.headers_mut().insert(SERVED_BY.clone(), value);
                }
            }
            if secrets.is_empty() {
                return response;
            }
            // A key an upstream echoes (a 401 that quotes it, an error event, a header) never
            // leaves.
            let (mut parts, body) = response.into_parts();
            parts.headers.remove(http::header::CONTENT_LENGTH);
            for value in parts.headers.values_mut() {
                if let Cow::Owned(redacted) = secrets.redact_bytes(value.as_bytes()) {
                    *value = HeaderValue::from_bytes(&redacted)
                        .unwrap_or(HeaderValue::from_static(tower_llm_stream::redact::REDACTED));
                }
            }
            Response::from_parts(parts, RedactBody::new(body, &secrets).boxed_unsync())
        }
    }

    /// Sends the request of a resumable stream (`x-resumable: 1`, module [`resume`]) as
    /// [`forward`](Proxy::forward) does, through the library's `ResumeLayer`: its stream runs
    /// to its end into the store in a task of its own, whether its client stays or not, and
    /// the client reads it back from the store, each event with its `id: N`, the stream's id
    /// in `x-stream-id`. What is stored is what the client would have got (secrets redacted).
    /// An answer that is not a stream (an error status) comes as it is, without an id.
    ///
    /// A background response (module [`background`]) is numbered by its `sequence_number`s
    /// instead, and its response named by the proxy (`resp_…`, the stream's id): the id the
    /// client reads it back and cancels it by.
    fn forward_resumable(
        &self,
        mut request: Request<UpstreamRequestBody>,
        numbering: Numbering,
    ) -> impl Future<Output = Response<ProxyBody>> + Send + 'static {
        let resume = self
            .inner
            .config
            .resume
            .as_ref()
            .expect("asked for only with --resumable");
        let responses = numbering == Numbering::SequenceNumbers;
        let id = if responses {
            background::new_id()
        } else {
            resume::new_id()
        };
        request
            .extensions_mut()
            .insert(Resumable::new(id.clone()).numbering(numbering));
        let name = responses.then(|| id.clone());
        // Without the connection's stall flag: the stream outlives its client.
        let proxy = Proxy {
            inner: self.inner.clone(),
            stall: None,
        };
        let mut service = ResumeLayer::new(resume.store.clone())
            .ttl(resume.ttl)
            .producers(self.inner.producers.clone())
            .layer(tower::service_fn(move |request| {
                let (proxy, name) = (proxy.clone(), name.clone());
                async move {
                    let response = proxy.forward(request).await;
                    let response = match name {
                        Some(name) => response.map(|body| {
                            body.map_frame(move |frame| {
                                frame.map_data(|data| background::rename(data, &name))
                            })
                            .boxed_unsync()
                        }),
                        None => response,
                    };
                    Ok::<_, std::convert::Infallible>(response)
                }
            }));
        // Ready: `Resume` is as ready as its inner service, and a `service_fn` always is. Its
        // future is boxed, a type the compiler can see is `Send` (not so `oneshot`'s).
        let call = service.call(request);
        async move {
            let response = match call.await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            let (mut parts, body) = response.into_parts();
            let body = match body {
                ResumeResponseBody::Direct(body) => body,
                ResumeResponseBody::Stored(body) => {
                    tracing::debug!(stream = %id, "resumable stream started");
                    if !responses {
                        let id = HeaderValue::from_str(&id).expect("hex digits");
                        parts.headers.insert(resume::STREAM_ID.clone(), id);
                    }
                    coalesce::ReadyFrames::new(body.map_err(Into::into)).boxed_unsync()
                }
            };
            Response::from_parts(parts, body)
        }
    }

    /// `/v1/streams/{id}`: `GET` reads a resumable stream from the event after
    /// `Last-Event-ID`, `DELETE` stops it.
    async fn stream_route(self, request: Request<ClientBody>, id: String) -> Response<ProxyBody> {
        let Some(resume) = self.inner.config.resume.clone() else {
            return error(StatusCode::BAD_REQUEST, "resumable_disabled", resume::OFF);
        };
        let (parts, _) = request.into_parts();
        match parts.method {
            Method::GET => resume::read(&resume, &id, &parts.headers, parts.uri.query()).await,
            Method::DELETE => resume::cancel(&resume, &self.inner.producers, &id).await,
            _ => not_allowed("GET, DELETE"),
        }
    }
}

type Boxed<T> =
    std::pin::Pin<Box<dyn Future<Output = Result<T, tower_llm_stream::BoxError>> + Send>>;

/// The upstream call in flight: through the layers, or without them.
enum Call {
    Layered(Boxed<<Stack as tower::Service<Request<UpstreamRequestBody>>>::Response>),
    Bare(Boxed<<Upstream as tower::Service<Request<UpstreamRequestBody>>>::Response>),
}

fn finish_forward<B>(result: Result<Response<B>, tower_llm_stream::BoxError>) -> Response<ProxyBody>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<tower_llm_stream::BoxError>,
{
    let response = match result {
        Ok(response) => response,
        // ErrorEventLayer turns inner errors into 502 responses; this is a safety net.
        Err(e) => {
            return error(
                StatusCode::BAD_GATEWAY,
                "upstream_unavailable",
                &e.to_string(),
            );
        }
    };
    // Streams already carry `cache-control: no-cache` and `x-accel-buffering: no`: the
    // reframer sets them.
    let (mut parts, body) = response.into_parts();
    util::strip_hop_by_hop(&mut parts.headers);
    parts.headers.remove(http::header::SET_COOKIE);
    parts.extensions.insert(Forwarded);
    let body = coalesce::ReadyFrames::new(body.map_err(Into::into));
    Response::from_parts(parts, body.boxed_unsync())
}

/// The response header that names the target that answered: `provider/model`.
pub static SERVED_BY: http::HeaderName = http::HeaderName::from_static("x-served-by");

/// Marks responses that went through the stack (they log their own line).
#[derive(Clone, Copy)]
struct Forwarded;

/// A request body's `model`, as raw JSON; the rest skipped.
#[derive(serde::Deserialize)]
struct ModelField<'a> {
    #[serde(default, borrow)]
    model: Option<&'a serde_json::value::RawValue>,
    /// A Responses request's `background` (`true`: run on when the client goes).
    #[serde(default, borrow)]
    background: Option<&'a serde_json::value::RawValue>,
}

/// What a client asked for, kept to prepare the request of each target: its model's, then
/// its fallbacks'.
struct Ask {
    api: ClientApi,
    /// The OpenAI route it came by (`None`: an Anthropic or Gemini route).
    endpoint: Option<Endpoint>,
    headers: http::HeaderMap,
    body: Bytes,
    /// The body read, when a route had to read it (Anthropic, Gemini): not read twice.
    map: Option<serde_json::Map<String, Value>>,
    /// Whether the client asked for a stream; `None`: as its OpenAI body says, read where the
    /// request is prepared.
    stream: Option<bool>,
    gemini: Option<GeminiStream>,
    /// Asked for a resumable stream, and how its events are numbered: `x-resumable: 1` (SSE
    /// ids) or a background response (sequence numbers); `None`: not resumable.
    resumable: Option<Numbering>,
}

/// Why a request body is not a JSON object.
fn invalid_json(body: &[u8]) -> Response<ProxyBody> {
    let message = match serde_json::from_slice::<Value>(body) {
        // An object that the model reader refused: a repeated `model`.
        Ok(Value::Object(_)) => match serde_json::from_slice::<ModelField<'_>>(body) {
            Err(e) if e.to_string().starts_with("duplicate field `model`") => {
                "the request body has more than one \"model\" key: send it once".to_owned()
            }
            _ => "the request body must be a JSON object".to_owned(),
        },
        Ok(_) => "the request body must be a JSON object".to_owned(),
        Err(e) => format!("the request body is not valid JSON: {e}"),
    };
    error(StatusCode::BAD_REQUEST, "invalid_json", &message)
}

fn full_request_body(body: Bytes) -> UpstreamRequestBody {
    http_body_util::Full::new(body)
        .map_err(|never| match never {})
        .boxed_unsync()
}

fn copy_timeout_header(from: &http::HeaderMap, to: &mut http::HeaderMap) {
    if let Some(value) = from.get(&TIMEOUT_HEADER) {
        to.insert(TIMEOUT_HEADER.clone(), value.clone());
    }
}

fn refused(e: RequestError) -> Response<ProxyBody> {
    json_response(e.status, e.body())
}

/// The `408` for a request body that did not arrive within the body timeout.
fn body_timed_out(api: ClientApi, limit: Duration) -> Response<ProxyBody> {
    api_error(
        api,
        StatusCode::REQUEST_TIMEOUT,
        "request_timeout",
        &util::BodyTimeout(limit).to_string(),
    )
}

fn too_large(limit: u64) -> Response<ProxyBody> {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "request_too_large",
        &format!("the request body is larger than this proxy's limit of {limit} bytes"),
    )
}

/// The playground page: one self-contained file, no external assets.
const PLAYGROUND: &str = include_str!("playground.html");

fn playground() -> Response<ProxyBody> {
    Response::builder()
        .header(CONTENT_TYPE, "text/html; charset=utf-8")
        .header(
            "content-security-policy",
            "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; frame-ancestors 'none'",
        )
        .header("x-content-type-options", "nosniff")
        .body(util::full(PLAYGROUND))
        .expect("a valid response")
}

fn not_allowed(allow: &'static str) -> Response<ProxyBody> {
    let mut response = error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        &format!("use {allow}"),
    );
    response
        .headers_mut()
        .insert(http::header::ALLOW, HeaderValue::from_static(allow));
    response
}

/// The HTTP status for an error event that ends a stream the client wanted as one object.
fn status_of(error: &Value) -> StatusCode {
    let text = |key: &str| error[key].as_str().unwrap_or("");
    tower_llm_stream::render::error_status(text("type"), text("code"))
}

/// How a Gemini request asked for its answer: `:streamGenerateContent` or not, `alt=sse` or not.
#[derive(Clone, Copy)]
struct GeminiStream {
    stream: bool,
    sse: bool,
}

/// An error response of the standard shape rewritten in `api`'s error shape (its body is
/// small: the proxy's own, or an upstream's normalized by the error layer).
async fn in_api(api: ClientApi, response: Response<ProxyBody>) -> Response<ProxyBody> {
    let status = response.status();
    if status.is_success()
        || matches!(
            api,
            ClientApi::ChatCompletions | ClientApi::Completions | ClientApi::Responses
        )
    {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let body = match body.collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) => {
            return api_error(
                api,
                StatusCode::BAD_GATEWAY,
                "upstream_body_error",
                &e.to_string(),
            );
        }
    };
    parts.headers.remove(http::header::CONTENT_LENGTH);
    Response::from_parts(parts, util::full(client_api::rewrite(api, status, &body)))
}

/// The standard stream folded into one `chat.completion`; an error response when the stream
/// failed, was not a stream, or was longer than `limit` bytes.
async fn fold(response: Response<ProxyBody>, limit: usize) -> Result<Value, Response<ProxyBody>> {
    if !response.status().is_success() || !is_event_stream(response.headers()) {
        return Err(response);
    }
    let mut body = response.into_body();
    let mut decoder = Decoder::new();
    let mut folded = ChatCompletionAggregator::new();
    let mut read = 0usize;
    let push =
        |decoder: &mut Decoder, folded: &mut ChatCompletionAggregator| -> Result<(), String> {
            while let Some(block) = decoder.next_block() {
                let block = block.map_err(|e| e.to_string())?;
                if let Some(event) = block.event() {
                    folded
                        .push(event.data())
                        .map_err(|e| format!("unreadable chunk: {e}"))?;
                }
            }
            Ok(())
        };
    loop {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    read = read.saturating_add(data.len());
                    if read > limit {
                        // Dropping the body cancels the upstream.
                        return Err(error(
                            StatusCode::BAD_GATEWAY,
                            "response_too_large",
                            &format!(
                                "the upstream's answer is larger than this proxy's limit of {limit} bytes: ask for a stream (\"stream\": true), or start the proxy with a larger --max-response-bytes"
                            ),
                        ));
                    }
                    decoder.push(data);
                    if let Err(e) = push(&mut decoder, &mut folded) {
                        return Err(error(StatusCode::BAD_GATEWAY, "malformed_event", &e));
                    }
                }
            }
            Some(Err(e)) => {
                return Err(error(
                    StatusCode::BAD_GATEWAY,
                    "upstream_body_error",
                    &e.to_string(),
                ));
            }
            None => break,
        }
    }
    decoder.finish();
    if let Err(e) = push(&mut decoder, &mut folded) {
        return Err(error(StatusCode::BAD_GATEWAY, "malformed_event", &e));
    }
    if let Some(e) = folded.error() {
        let status = status_of(e);
        return Err(json_response(status, json!({"error": e}).to_string()));
    }
    Ok(folded.finish())
}

/// Streams one HTTP/2 connection may carry at once.
pub const H2_MAX_STREAMS: u32 = 128;

/// Streams an HTTP/2 client may open and reset before the proxy has read them, before it
/// closes the connection (`GOAWAY`, ENHANCE_YOUR_CALM): the "rapid reset" attack.
pub const H2_MAX_PENDING_RESETS: usize = 32;

/// How long the open streams get, once the grace period is over, to send their
/// `server_shutting_down` event.
const LAST_WORDS: Duration = Duration::from_secs(2);

/// Serves connections until `shutdown` resolves, then stops accepting and lets open requests
/// and resumable streams (which run on without a connection) finish (up to `grace`); then
/// ends the streams still open with the `server_shutting_down` error event.
///
/// Each connection: the whole request head within `header_timeout` (the first one from the
/// moment it is accepted, HTTP/2 included), writes that do not progress for the idle timeout
/// drop it ([`conn::StallGuard`]), HTTP/2 with [`H2_MAX_STREAMS`] and rapid-reset protection.
/// At most `max_connections` are open: beyond them new connections wait in the listen backlog.
pub async fn serve(
    listener: tokio::net::TcpListener,
    proxy: Proxy,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    let config = &proxy.inner.config;
    let (header_timeout, idle) = (config.header_timeout, config.timeout);
    let slots = Arc::new(tokio::sync::Semaphore::new(config.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // What is ready goes out in one write: hyper copies the frames (a few KiB) into one buffer
    // instead of queueing up to 16 slices per `writev` (a 20-event burst took two).
    builder
        .http1()
        .writev(false)
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(H2_MAX_STREAMS)
        .max_pending_accept_reset_streams(H2_MAX_PENDING_RESETS)
        .max_header_list_size(64 * 1024)
        .keep_alive_interval(idle)
        .keep_alive_timeout(idle);
    tokio::pin!(shutdown);
    let mut full_logged = false;
    loop {
        let permit = match slots.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if !full_logged {
                    tracing::warn!(
                        max_connections = config.max_connections,
                        "connection limit reached: new connections wait (raise --max-connections, and the open-file limit with it)"
                    );
                    full_logged = true;
                }
                tokio::select! {
                    permit = slots.clone().acquire_owned() => permit.expect("never closed"),
                    () = &mut shutdown => break,
                }
            }
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little, go on.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        full_logged = false;
        let _ = stream.set_nodelay(true);
        let stall = ClientStall::new();
        let io = conn::StallGuard::new(stream, idle, stall.clone(), peer);
        // Set by the first request: until then the connection is under the header timeout
        // (hyper's applies to HTTP/1 heads once reading starts; this one also covers a
        // connection that sends nothing, or trickles its HTTP/2 preface).
        let started = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let proxy = proxy.for_connection(stall);
        let first = started.clone();
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            first.store(true, std::sync::atomic::Ordering::Relaxed);
            let proxy = proxy.clone();
            async move { Ok::<_, std::convert::Infallible>(proxy.handle(request).await) }
        });
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
        let connection = graceful.watch(connection.into_owned());
        tokio::spawn(async move {
            let _slot = permit;
            tokio::pin!(connection);
            let head = tokio::time::sleep(header_timeout);
            tokio::pin!(head);
            let mut waiting = true;
            loop {
                tokio::select! {
                    result = &mut connection => {
                        if let Err(e) = result {
                            tracing::debug!(%peer, error = %e, "connection ended with an error");
                        }
                        return;
                    }
                    () = &mut head, if waiting => {
                        if started.load(std::sync::atomic::Ordering::Relaxed) {
                            waiting = false;
                        } else {
                            tracing::debug!(%peer, ?header_timeout, "no request head within the header timeout: connection closed");
                            return;
                        }
                    }
                }
            }
        });
    }
    drop(listener);
    tracing::info!("shutting down: no new connections, waiting for open requests");
    // Resumable streams run on without a connection: waited for as connections are, then
    // ended with server_shutting_down (stored, so their readers on other replicas learn it at
    // once) rather than dropped.
    let producers = proxy.inner.producers.clone();
    let closed = async move {
        graceful.shutdown().await;
        producers.finished().await;
    };
    tokio::pin!(closed);
    tokio::select! {
        () = &mut closed => tracing::info!("all connections closed"),
        () = tokio::time::sleep(grace) => {
            tracing::warn!(?grace, "grace period over: the open streams end with server_shutting_down");
            proxy.end_streams();
            tokio::select! {
                () = &mut closed => tracing::info!("all connections closed"),
                () = tokio::time::sleep(LAST_WORDS) => tracing::warn!("closing the connections still open"),
            }
        }
    }
}
