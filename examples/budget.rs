//! Metering: a token budget per API key, counted from each stream's summary.
//!
//! ```sh
//! cargo run --example budget
//! curl -N http://127.0.0.1:3002/v1/chat/completions -H 'authorization: Bearer sk-demo-a' \
//!      -H 'content-type: application/json' \
//!      -d '{"model":"demo","stream":true,"messages":[{"role":"user","content":"hi"}]}'
//! ```
//!
//! `BUDGET_KEYS` lists the keys and their budgets in tokens (input + output), comma-separated:
//! `KEY=TOKENS`, or `ID:KEY=TOKENS` to name the key (e.g.
//! `BUDGET_KEYS="team-a:sk-a=200,sk-b=1000"`); an unnamed key is `key-1`, `key-2`, … by its
//! place. The id, never the key, labels the stream ([`StreamLabels::client`]) and appears in
//! logs and errors. Unset, two demo keys are used and printed at start.
//!
//! How it works:
//! - A middleware in front of the stream layers ([`authorize`]) finds the key's account from
//!   `Authorization: Bearer <key>` (else `401 invalid_api_key`), refuses a key whose metered
//!   usage has reached its budget (`429 token_budget_exceeded`, the request is not forwarded),
//!   asks the upstream to report usage (`stream_options.include_usage`), and labels the request
//!   with `StreamLabels::new(provider, model).client(id)`.
//! - [`LlmStreamLayer::on_stream_end`] hands each stream's `StreamSummary` to [`Budgets::meter`],
//!   which adds its `usage.input_tokens + usage.output_tokens` to the client's counter.
//!
//! A budget is checked when a request arrives and charged when its stream ends, so the streams
//! already running when a key reaches its budget finish, and the key can end over its budget by
//! what they used. Usage is what the upstream reported (never estimated): a stream cut off
//! before its last chunk costs nothing here. Only streamed requests are accepted, since only a
//! stream's summary carries usage. Counters live in memory and start at zero with the server.
//!
//! With no `UPSTREAM` set it starts the built-in demo upstream (19 tokens per stream);
//! `UPSTREAM=http://127.0.0.1:8081` forwards to an OpenAI-compatible server (plain HTTP, without
//! the client's key). `LISTEN` changes the address (default `127.0.0.1:3002`).

#[path = "support/demo_upstream.rs"]
pub mod demo_upstream;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tower_http::catch_panic::CatchPanicLayer;
use tower_llm_stream::LlmStreamLayer;
use tower_llm_stream::observe::{StreamLabels, StreamSummary};

/// The keys used when `BUDGET_KEYS` is unset: the first runs out after three demo streams.
pub const DEMO_KEYS: &str = "sk-demo-a=50,sk-demo-b=1000";

/// The largest request body the middleware reads (it needs the body's `model` and `stream`).
const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;

/// One API key's budget and what its streams have used.
#[derive(Debug)]
struct Account {
    /// The name used in labels, logs and errors: never the key.
    id: String,
    /// Tokens (input + output) the key may use.
    budget: u64,
    /// Tokens its finished streams used.
    used: AtomicU64,
}

/// The configured keys and their counters, shared by the middleware (which reads them) and the
/// stream-end callback (which adds to them). Bounded: only configured keys have a counter.
#[derive(Debug, Clone)]
pub struct Budgets {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// In configuration order, for printing.
    accounts: Vec<Arc<Account>>,
    /// The middleware finds accounts by key (a server with real keys would store and look up
    /// hashes of them instead); the callback by id.
    by_key: HashMap<String, Arc<Account>>,
    by_id: HashMap<String, Arc<Account>>,
}

impl Budgets {
    /// Reads `[ID:]KEY=TOKENS,…` (the `BUDGET_KEYS` syntax). The errors say which entry is wrong
    /// and how to write it, without repeating the key.
    pub fn parse(spec: &str) -> Result<Budgets, String> {
        const SYNTAX: &str = "write each entry as KEY=TOKENS or ID:KEY=TOKENS, comma-separated, \
                              e.g. BUDGET_KEYS=\"team-a:sk-a=200,sk-b=1000\"";
        let mut inner = Inner {
            accounts: Vec::new(),
            by_key: HashMap::new(),
            by_id: HashMap::new(),
        };
        for (i, entry) in spec.split(',').map(str::trim).enumerate() {
            let n = i + 1;
            if entry.is_empty() {
                return Err(format!("entry {n} is empty: {SYNTAX}"));
            }
            let Some((name, tokens)) = entry.rsplit_once('=') else {
                return Err(format!("entry {n} has no budget: {SYNTAX}"));
            };
            let budget: u64 = tokens.trim().parse().map_err(|_| {
                format!(
                    "entry {n}: the budget `{}` is not a whole number of tokens: {SYNTAX}",
                    tokens.trim()
                )
            })?;
            let (id, key) = match name.split_once(':') {
                Some((id, key)) => (id.trim().to_owned(), key.trim()),
                None => (format!("key-{n}"), name.trim()),
            };
            if key.is_empty() {
                return Err(format!("entry {n} has no key: {SYNTAX}"));
            }
            if id.is_empty()
                || id == key
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            {
                return Err(format!(
                    "entry {n}: the id must be letters, digits, `-`, `_` or `.`, and not the key \
                     itself (it appears in logs and errors): {SYNTAX}"
                ));
            }
            let account = Arc::new(Account {
                id: id.clone(),
                budget,
                used: AtomicU64::new(0),
            });
            if inner
                .by_key
                .insert(key.to_owned(), account.clone())
                .is_some()
            {
                return Err(format!(
                    "entry {n} repeats the key of an earlier entry: list each key once"
                ));
            }
            if inner.by_id.insert(id.clone(), account.clone()).is_some() {
                return Err(format!(
                    "entry {n} repeats the id `{id}`: give each key its own id"
                ));
            }
            inner.accounts.push(account);
        }
        Ok(Budgets {
            inner: Arc::new(inner),
        })
    }

    /// The `on_stream_end` callback's work: adds the tokens the stream's upstream reported to
    /// its client's counter. Streams without a configured client (none reach the routes) and
    /// streams without usage add nothing.
    pub fn meter(&self, summary: &StreamSummary) {
        let Some(account) = summary
            .client
            .as_deref()
            .and_then(|id| self.inner.by_id.get(id))
        else {
            return;
        };
        let tokens = summary
            .usage
            .input_tokens
            .unwrap_or(0)
            .saturating_add(summary.usage.output_tokens.unwrap_or(0));
        // Saturating: an upstream's absurd count must not wrap a counter back under its budget.
        let before = account
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                Some(used.saturating_add(tokens))
            })
            .unwrap_or_else(|used| used);
        tracing::info!(
            client = %account.id,
            tokens,
            used = before.saturating_add(tokens),
            budget = account.budget,
            outcome = summary.outcome.as_str(),
            "stream metered"
        );
    }

    /// `(id, budget)` of each key, in configuration order.
    pub fn budgets(&self) -> impl Iterator<Item = (&str, u64)> {
        self.inner
            .accounts
            .iter()
            .map(|account| (account.id.as_str(), account.budget))
    }
}

/// Where requests go, and the provider name their streams are labelled with.
#[derive(Clone)]
pub struct Upstream {
    client: Client<HttpConnector, Body>,
    base: String,
    provider: &'static str,
}

impl Upstream {
    /// An OpenAI-compatible upstream at `base` (`http://host:port`, plain HTTP).
    pub fn new(base: impl Into<String>, provider: &'static str) -> Self {
        Upstream {
            client: Client::builder(TokioExecutor::new()).build_http(),
            base: base.into().trim_end_matches('/').to_owned(),
            provider,
        }
    }
}

/// The app: the LLM routes behind the stream layers, which meter every stream, behind the
/// middleware that authorizes keys against their budgets.
pub fn app(budgets: Budgets, upstream: Upstream) -> Router {
    let meter = budgets.clone();
    Router::new()
        .route("/v1/chat/completions", post(forward))
        .route("/v1/completions", post(forward))
        .route_layer(
            LlmStreamLayer::new()
                .on_stream_end(move |summary: &StreamSummary| meter.meter(summary)),
        )
        // Added after the stream layers, so it runs before them: a refused request never
        // reaches them (no stream, no summary), and its error body is left as written.
        .route_layer(middleware::from_fn_with_state(
            (budgets, upstream.provider),
            authorize,
        ))
        .with_state(upstream)
        // Outermost: a panic anywhere inside becomes a 500, not a dropped connection.
        .layer(CatchPanicLayer::new())
}

/// An error in OpenAI's shape: `{"error":{"type","code","message"}}`.
fn error(status: StatusCode, kind: &str, code: &str, message: String) -> Response {
    let body = json!({ "error": { "type": kind, "code": code, "message": message } });
    (status, Json(body)).into_response()
}

/// The key from `Authorization: Bearer <key>`, if the header has one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = value.split_once(' ')?;
    let key = key.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !key.is_empty()).then_some(key)
}

/// Authorizes the key against its budget, makes sure the upstream reports usage, and labels
/// the request with the key's id for the stream-end callback.
pub async fn authorize(
    State((budgets, provider)): State<(Budgets, &'static str)>,
    request: Request,
    next: Next,
) -> Response {
    let Some(key) = bearer(request.headers()) else {
        return error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "invalid_api_key",
            "no API key: send one as `Authorization: Bearer <key>`".to_owned(),
        );
    };
    let Some(account) = budgets.inner.by_key.get(key).cloned() else {
        return error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "invalid_api_key",
            "unknown API key: use a key listed in BUDGET_KEYS".to_owned(),
        );
    };
    let used = account.used.load(Ordering::Relaxed);
    if used >= account.budget {
        return error(
            StatusCode::TOO_MANY_REQUESTS,
            "insufficient_quota",
            "token_budget_exceeded",
            format!(
                "API key {} has used {used} of its {} tokens: raise its budget in BUDGET_KEYS",
                account.id, account.budget
            ),
        );
    }

    let (mut parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_REQUEST_BYTES).await else {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            "request_too_large",
            format!(
                "the request body is over {} MiB (or was cut off): send a smaller request",
                MAX_REQUEST_BYTES >> 20
            ),
        );
    };
    let mut json = match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(json)) => json,
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "invalid_json",
                "the request body is not a JSON object: send the request as JSON".to_owned(),
            );
        }
    };
    // Only a stream's summary carries usage: an unstreamed answer would not be metered.
    if json.get("stream") != Some(&Value::Bool(true)) {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "stream_required",
            "this server meters streamed requests only: send \"stream\": true".to_owned(),
        );
    }
    // OpenAI-compatible upstreams report a stream's usage only when asked.
    match json.get_mut("stream_options") {
        Some(Value::Object(options)) => {
            options.insert("include_usage".to_owned(), Value::Bool(true));
        }
        _ => {
            json.insert(
                "stream_options".to_owned(),
                json!({ "include_usage": true }),
            );
        }
    }
    let model = match json.get("model") {
        Some(Value::String(model)) => model.clone(),
        _ => "upstream".to_owned(),
    };
    let body = Bytes::from(serde_json::to_vec(&json).expect("a JSON value serializes"));
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    parts
        .extensions
        .insert(StreamLabels::new(provider, model).client(account.id.clone()));
    next.run(Request::from_parts(parts, Body::from(body))).await
}

/// Forwards the request to the upstream, without the client's key.
async fn forward(State(upstream): State<Upstream>, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    let target = format!("{}{}", upstream.base, parts.uri.path());
    parts.uri = match target.parse() {
        Ok(uri) => uri,
        Err(err) => return (StatusCode::BAD_GATEWAY, err.to_string()).into_response(),
    };
    parts.headers.remove(header::HOST);
    // The key is this server's credential, not the upstream's.
    parts.headers.remove(header::AUTHORIZATION);
    match upstream
        .client
        .request(Request::from_parts(parts, body))
        .await
    {
        Ok(response) => response.into_response(),
        // The error layer turns this into a JSON error body with the status kept.
        Err(err) => (StatusCode::BAD_GATEWAY, err.to_string()).into_response(),
    }
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let spec = std::env::var("BUDGET_KEYS").ok();
    let budgets = match Budgets::parse(spec.as_deref().unwrap_or(DEMO_KEYS)) {
        Ok(budgets) => budgets,
        Err(err) => {
            eprintln!("BUDGET_KEYS: {err}");
            std::process::exit(2);
        }
    };
    let listen = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:3002".to_owned());
    if spec.is_none() {
        // Demo keys only: configured keys are never printed.
        println!("BUDGET_KEYS is not set; demo keys (id, key, budget in tokens):");
        for (entry, (id, budget)) in DEMO_KEYS.split(',').zip(budgets.budgets()) {
            let key = entry.split_once('=').map_or(entry, |(key, _)| key);
            println!("  {id}  {key}  {budget}");
        }
    }
    for (id, budget) in budgets.budgets() {
        tracing::info!(client = id, budget, "budget");
    }
    let upstream = match std::env::var("UPSTREAM") {
        Ok(url) => Upstream::new(url, "upstream"),
        Err(_) => Upstream::new(format!("http://{}", demo_upstream::spawn().await), "demo"),
    };

    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .expect("bind the listen address (set LISTEN to a free one)");
    tracing::info!(%listen, upstream = %upstream.base, "budget example listening");
    axum::serve(listener, app(budgets, upstream))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .expect("server");
}
