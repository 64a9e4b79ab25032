//! The layers around a plain hyper service, in front of an OpenAI-compatible upstream.
//!
//! ```sh
//! cargo run --example hyper
//! curl -N http://127.0.0.1:3001/v1/chat/completions -d '{"model":"demo","stream":true}'
//! ```
//!
//! Like `examples/axum.rs`: `UPSTREAM` picks the upstream (default: a built-in demo that
//! streams with CRLF and split events), `LISTEN` the address (default `127.0.0.1:3001`).

#[path = "support/demo_upstream.rs"]
mod demo_upstream;

use bytes::Bytes;
use http::{HeaderName, Request, Uri};
use http_body_util::BodyExt;
use http_body_util::combinators::BoxBody;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use std::time::Duration;
use tower::ServiceBuilder;
use tower_llm_stream::BoxError;
use tower_llm_stream::error_event::ErrorEventLayer;
use tower_llm_stream::observe::ObserveLayer;
use tower_llm_stream::reframe::SseReframeLayer;
use tower_llm_stream::timeout::StreamTimeoutLayer;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let base = match std::env::var("UPSTREAM") {
        Ok(url) => url.trim_end_matches('/').to_owned(),
        Err(_) => format!("http://{}", demo_upstream::spawn().await),
    };
    let client: Client<_, BoxBody<Bytes, hyper::Error>> =
        Client::builder(TokioExecutor::new()).build_http();

    // The upstream call: the request forwarded as it is. Errors (upstream unreachable) become
    // a 502 JSON response in ErrorEventLayer.
    let forward = {
        let base = base.clone();
        move |request: Request<Incoming>| {
            let client = client.clone();
            let target = format!("{base}{}", request.uri().path());
            async move {
                let (mut parts, body) = request.into_parts();
                parts.uri = target.parse::<Uri>().map_err(std::io::Error::other)?;
                parts.headers.remove(http::header::HOST);
                let response = client
                    .request(Request::from_parts(parts, body.boxed()))
                    .await
                    .map_err(std::io::Error::other)?;
                Ok::<_, std::io::Error>(response)
            }
        }
    };
    let service = ServiceBuilder::new()
        .layer(ObserveLayer::new())
        .layer(ErrorEventLayer::new())
        .layer(StreamTimeoutLayer::new().override_header(
            HeaderName::from_static("x-request-timeout"),
            Duration::from_secs(600),
        ))
        .layer(SseReframeLayer::new())
        .service_fn(forward);

    let listen = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:3001".to_owned());
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    tracing::info!(%listen, upstream = %base, "hyper example listening");
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => accepted?,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        let service = TowerToHyperService::new(service.clone());
        tokio::spawn(async move {
            if let Err(err) = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%err, "connection ended");
            }
        });
    }
}
