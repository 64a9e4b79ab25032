//! Real loopback servers for end-to-end tests: a scripted upstream and proxies (axum and
//! plain hyper) with the layers in front of it.
#![allow(dead_code)]

use super::script::{ScriptBody, Step, data, wait_secs};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_llm_stream::error_event::ErrorEventLayer;
use tower_llm_stream::reframe::SseReframeLayer;
use tower_llm_stream::timeout::StreamTimeoutLayer;

pub const CHAT_FIXTURE: &str = "openai/chat_text_include_usage.sse";

/// Where the endless stream's body was dropped (the upstream saw the disconnect).
pub type DropClock = Arc<Mutex<Option<Instant>>>;

/// An upstream body that sends an event every `every` forever.
pub struct Ticker {
    n: u64,
    every: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
    dropped: DropClock,
}

impl Body for Ticker {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.sleep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        let every = self.every;
        self.sleep
            .as_mut()
            .reset(tokio::time::Instant::now() + every);
        self.n += 1;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(format!(
            "data: {{\"n\":{}}}\n\n",
            self.n
        ))))))
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        *self.dropped.lock().unwrap() = Some(Instant::now());
    }
}

pub enum UpstreamBody {
    Script(ScriptBody),
    Ticker(Ticker),
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = std::io::Error;
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        match self.get_mut() {
            UpstreamBody::Script(body) => Pin::new(body).poll_frame(cx),
            UpstreamBody::Ticker(body) => Pin::new(body)
                .poll_frame(cx)
                .map(|f| f.map(|r| r.map_err(|e| match e {}))),
        }
    }
}

pub struct Upstream {
    pub addr: SocketAddr,
    pub ticker_dropped: DropClock,
}

fn script_for(path: &str) -> Option<Vec<Step>> {
    let fixture = super::fixture(CHAT_FIXTURE);
    Some(match path {
        // Every byte in its own write.
        "/split" => fixture.iter().map(|b| data(vec![*b])).collect(),
        "/whole" => vec![data(fixture)],
        "/stall" => vec![data("data: {\"a\":1}\n\n"), Step::Stall],
        "/reset" => vec![
            data("data: {\"a\":1}\n\ndata: {\"b\""),
            wait_secs(0.05),
            Step::Fail("upstream went away"),
        ],
        "/truncated" => vec![data("data: {\"a\":1}\n\n")],
        _ => return None,
    })
}

/// A hyper server on 127.0.0.1 serving the scripted streams by path.
pub async fn spawn_upstream() -> Upstream {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let ticker_dropped: DropClock = Arc::default();
    let dropped = ticker_dropped.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            stream.set_nodelay(true).unwrap();
            let dropped = dropped.clone();
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let dropped = dropped.clone();
                async move {
                    let path = req.uri().path().to_owned();
                    let body = if path == "/ticker" {
                        UpstreamBody::Ticker(Ticker {
                            n: 0,
                            every: Duration::from_millis(5),
                            sleep: Box::pin(tokio::time::sleep(Duration::ZERO)),
                            dropped,
                        })
                    } else if let Some(steps) = script_for(&path) {
                        UpstreamBody::Script(ScriptBody::new(steps))
                    } else {
                        let body = ScriptBody::new([data(
                            "{\"error\":{\"message\":\"no such route\",\"type\":\"invalid_request_error\"}}",
                        )]);
                        return Ok::<_, Infallible>(
                            Response::builder()
                                .status(404)
                                .header("content-type", "application/json")
                                .body(UpstreamBody::Script(body))
                                .unwrap(),
                        );
                    };
                    Ok(Response::builder()
                        .header("content-type", "text/event-stream")
                        .body(body)
                        .unwrap())
                }
            });
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Upstream {
        addr,
        ticker_dropped,
    }
}

pub type UpstreamClient = Client<HttpConnector, Empty<Bytes>>;

pub fn client() -> UpstreamClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Forwards the request's path to the upstream; the handler both proxies use.
pub async fn forward(
    client: UpstreamClient,
    upstream: SocketAddr,
    path: String,
) -> Result<Response<hyper::body::Incoming>, hyper_util::client::legacy::Error> {
    let uri = format!("http://{upstream}{path}");
    client
        .request(Request::get(uri).body(Empty::new()).unwrap())
        .await
}

/// An axum app with the layers applied through `Router::layer`.
pub async fn spawn_axum_proxy(upstream: SocketAddr, idle: Duration) -> SocketAddr {
    use axum::extract::State;
    use axum::response::IntoResponse;
    let client = client();
    let handler = move |State(client): State<UpstreamClient>, uri: http::Uri| async move {
        match forward(client, upstream, uri.path().replacen("/proxy", "", 1)).await {
            Ok(response) => response.into_response(),
            Err(err) => (StatusCode::BAD_GATEWAY, err.to_string()).into_response(),
        }
    };
    let app = axum::Router::new()
        .route("/proxy/{*rest}", axum::routing::get(handler))
        .with_state(client)
        .layer(
            ServiceBuilder::new()
                .layer(ErrorEventLayer::new())
                .layer(StreamTimeoutLayer::new().timeout(idle))
                .layer(SseReframeLayer::new()),
        );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// A plain hyper server with the layers around a `service_fn`.
pub async fn spawn_hyper_proxy(upstream: SocketAddr, idle: Duration) -> SocketAddr {
    let client = client();
    let service =
        ServiceBuilder::new()
            .layer(ErrorEventLayer::new())
            .layer(StreamTimeoutLayer::new().timeout(idle))
            .layer(SseReframeLayer::new())
            .service_fn(move |req: Request<hyper::body::Incoming>| {
                let client = client.clone();
                async move {
                    forward(client, upstream, req.uri().path().replacen("/proxy", "", 1)).await
                }
            });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let service = hyper_util::service::TowerToHyperService::new(service.clone());
            tokio::spawn(async move {
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// GETs a URL; returns the response head and the body read to its end (or its error).
pub async fn get(url: String) -> (http::response::Parts, Result<Bytes, String>) {
    let response = client()
        .request(Request::get(url).body(Empty::new()).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| e.to_string());
    (parts, body)
}
