//! The layers in an axum app, in front of an OpenAI-compatible upstream.
//!
//! ```sh
//! cargo run --example axum
//! curl -N http://127.0.0.1:3000/v1/chat/completions -H 'content-type: application/json' \
//!      -d '{"model":"demo","stream":true,"messages":[{"role":"user","content":"hi"}]}'
//! ```
//!
//! With no `UPSTREAM` set it starts a built-in demo upstream that streams with CRLF line
//! endings and events split across writes; the client gets one clean event per chunk.
//! `UPSTREAM=http://127.0.0.1:8081` forwards to any OpenAI-compatible server (plain HTTP).
//! `LISTEN` changes the address (default `127.0.0.1:3000`); `RUST_LOG=info` shows one span per
//! stream.

#[path = "support/demo_upstream.rs"]
mod demo_upstream;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http::{HeaderName, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_llm_stream::error_event::ErrorEventLayer;
use tower_llm_stream::observe::ObserveLayer;
use tower_llm_stream::reframe::SseReframeLayer;
use tower_llm_stream::timeout::StreamTimeoutLayer;

#[derive(Clone)]
struct Upstream {
    client: Client<HttpConnector, Body>,
    base: String,
}

/// Forwards the request as it is to the upstream.
async fn forward(State(upstream): State<Upstream>, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    let target = format!("{}{}", upstream.base, parts.uri.path());
    parts.uri = match target.parse() {
        Ok(uri) => uri,
        Err(err) => return (StatusCode::BAD_GATEWAY, err.to_string()).into_response(),
    };
    parts.headers.remove(http::header::HOST);
    match upstream
        .client
        .request(Request::from_parts(parts, body))
        .await
    {
        Ok(response) => response.into_response(),
        // ErrorEventLayer turns this into a JSON error body with the status kept.
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
    let base = match std::env::var("UPSTREAM") {
        Ok(url) => url.trim_end_matches('/').to_owned(),
        Err(_) => format!("http://{}", demo_upstream::spawn().await),
    };
    let upstream = Upstream {
        client: Client::builder(TokioExecutor::new()).build_http(),
        base: base.clone(),
    };

    let app = axum::Router::new()
        .route("/v1/chat/completions", post(forward))
        .route("/v1/completions", post(forward))
        .route("/v1/responses", post(forward))
        .with_state(upstream)
        .layer(
            ServiceBuilder::new()
                // Outermost: a panic anywhere inside becomes a 500, not a dropped connection.
                .layer(CatchPanicLayer::new())
                .layer(ObserveLayer::new())
                .layer(ErrorEventLayer::new())
                .layer(StreamTimeoutLayer::new().override_header(
                    HeaderName::from_static("x-request-timeout"),
                    Duration::from_secs(600),
                ))
                .layer(SseReframeLayer::new()),
        );

    let listen = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .expect("bind the listen address");
    tracing::info!(%listen, upstream = %base, "axum example listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .expect("server");
}
