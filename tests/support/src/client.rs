//! The client's side of the proxy under test: plain HTTP/1 requests, their answers read whole.

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use std::net::SocketAddr;
use std::time::Duration;

/// The client of [`client`]: plain HTTP, whole bodies.
pub type TestClient = Client<HttpConnector, Full<Bytes>>;

/// A plain-HTTP (HTTP/1) client for the proxy under test.
pub fn client() -> TestClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Sends `request` (its URI a path) to `addr` with `body`: the answer's head and its UTF-8 body.
pub async fn send(
    addr: SocketAddr,
    request: http::request::Builder,
    body: impl Into<Bytes>,
) -> (http::response::Parts, String) {
    let uri = format!("http://{addr}{}", request.uri_ref().unwrap());
    let request = request.uri(uri).body(Full::new(body.into())).unwrap();
    let response = client().request(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_else(|e| panic!("the body failed: {e}"));
    (parts, String::from_utf8(body.to_vec()).unwrap())
}

/// Posts `body` as JSON to `path` on `addr` and reads the whole answer, due within `within`.
pub async fn post(
    addr: SocketAddr,
    path: &str,
    body: String,
    within: Duration,
) -> (StatusCode, HeaderMap, String) {
    let request = Request::post(format!("http://{addr}{path}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let client = client();
    tokio::time::timeout(within, async move {
        let response = client.request(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        (
            parts.status,
            parts.headers,
            String::from_utf8_lossy(&body).into_owned(),
        )
    })
    .await
    .unwrap_or_else(|_| panic!("the proxy answered within {within:?}"))
}

/// The data of each event of an SSE body (its first `data: ` line).
pub fn data(body: &str) -> Vec<&str> {
    body.split("\n\n")
        .filter_map(|e| e.lines().find_map(|l| l.strip_prefix("data: ")))
        .collect()
}

/// An OpenAI chat request for `model`, streamed or not, of one user message ("Hi").
pub fn chat(model: &str, stream: bool) -> String {
    json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "Hi"}]})
        .to_string()
}
