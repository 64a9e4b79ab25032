//! End to end over real loopback sockets: an upstream that splits events at every byte,
//! stalls, resets or truncates, behind the layers in an axum app and in a plain hyper server.

mod common;

use bytes::Bytes;
use common::servers::{CHAT_FIXTURE, get, spawn_axum_proxy, spawn_hyper_proxy, spawn_upstream};
use http_body_util::BodyExt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const IDLE: Duration = Duration::from_millis(400);

async fn proxies() -> Vec<(&'static str, SocketAddr, common::servers::Upstream)> {
    let mut out = Vec::new();
    let upstream = spawn_upstream().await;
    out.push((
        "axum",
        spawn_axum_proxy(upstream.addr, IDLE).await,
        upstream,
    ));
    let upstream = spawn_upstream().await;
    out.push((
        "hyper",
        spawn_hyper_proxy(upstream.addr, IDLE).await,
        upstream,
    ));
    out
}

fn last_error(body: &Bytes) -> serde_json::Value {
    let events = common::events(vec![body.clone()]);
    serde_json::from_str(&events.last().unwrap().data).unwrap()
}

#[tokio::test]
async fn byte_split_upstream_arrives_whole_and_identical() {
    let expected = common::events(vec![Bytes::from(common::fixture(CHAT_FIXTURE))]);
    for (name, proxy, _) in proxies().await {
        for path in ["split", "whole"] {
            let (head, body) = get(format!("http://{proxy}/proxy/{path}")).await;
            assert_eq!(head.status, 200, "{name}");
            assert_eq!(head.headers["content-type"], "text/event-stream", "{name}");
            assert_eq!(head.headers["cache-control"], "no-cache", "{name}");
            let body = body.unwrap_or_else(|e| panic!("{name}/{path}: body error {e}"));
            assert!(!body.contains(&b'\r'));
            assert_eq!(common::events(vec![body]), expected, "{name}/{path}");
        }
    }
}

#[tokio::test]
async fn stalled_upstream_gets_an_idle_timeout_event_and_a_clean_end() {
    for (name, proxy, _) in proxies().await {
        let started = Instant::now();
        let (_, body) = get(format!("http://{proxy}/proxy/stall")).await;
        let body = body.unwrap_or_else(|e| panic!("{name}: the client saw a broken body: {e}"));
        assert!(started.elapsed() >= IDLE);
        assert!(body.starts_with(b"data: {\"a\":1}\n\n"));
        assert_eq!(
            last_error(&body)["error"]["code"],
            "stream_idle_timeout",
            "{name}"
        );
    }
}

#[tokio::test]
async fn upstream_reset_is_an_error_event_and_a_clean_end() {
    for (name, proxy, _) in proxies().await {
        let (_, body) = get(format!("http://{proxy}/proxy/reset")).await;
        let body = body.unwrap_or_else(|e| panic!("{name}: the client saw a broken body: {e}"));
        let error = last_error(&body);
        assert_eq!(
            error["error"]["code"], "upstream_body_error",
            "{name}: {error}"
        );
        assert_eq!(
            common::events(vec![body]).len(),
            2,
            "{name}: the partial event is not forwarded"
        );
    }
}

#[tokio::test]
async fn truncated_upstream_is_reported() {
    for (name, proxy, _) in proxies().await {
        let (_, body) = get(format!("http://{proxy}/proxy/truncated")).await;
        let body = body.unwrap();
        assert_eq!(
            last_error(&body)["error"]["code"],
            "stream_truncated",
            "{name}"
        );
        let events = common::events(vec![body]);
        assert!(
            events.iter().all(|e| e.data != "[DONE]"),
            "{name}: no [DONE] after an error"
        );
    }
}

#[tokio::test]
async fn upstream_error_status_is_kept_and_normalized() {
    for (name, proxy, _) in proxies().await {
        let (head, body) = get(format!("http://{proxy}/proxy/nope")).await;
        assert_eq!(head.status, 404, "{name}");
        let json: serde_json::Value = serde_json::from_slice(&body.unwrap()).unwrap();
        assert_eq!(json["error"]["message"], "no such route", "{name}");
        assert_eq!(json["error"]["type"], "invalid_request_error", "{name}");
    }
}

#[tokio::test]
async fn client_disconnect_closes_the_upstream_within_100ms() {
    for (name, proxy, upstream) in proxies().await {
        let client = common::servers::client();
        let response = client
            .request(
                http::Request::get(format!("http://{proxy}/proxy/ticker"))
                    .body(http_body_util::Empty::new())
                    .unwrap(),
            )
            .await
            .unwrap();
        let mut body = response.into_body();
        for _ in 0..3 {
            body.frame().await.unwrap().unwrap();
        }
        assert!(
            upstream.ticker_dropped.lock().unwrap().is_none(),
            "{name}: still streaming"
        );
        let disconnected = Instant::now();
        drop(body);
        drop(client);
        let deadline = disconnected + Duration::from_secs(5);
        let closed_at = loop {
            if let Some(at) = *upstream.ticker_dropped.lock().unwrap() {
                break at;
            }
            assert!(
                Instant::now() < deadline,
                "{name}: the upstream stream was never dropped"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        let took = closed_at.saturating_duration_since(disconnected);
        eprintln!("{name}: upstream closed {took:?} after the client left");
        assert!(
            took < Duration::from_millis(100),
            "{name}: upstream closed {took:?} after the client left"
        );
    }
}
