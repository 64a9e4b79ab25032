//! `examples/budget.rs` over real sockets: a key streams until the usage its streams reported
//! reaches its budget, then gets a `429`; another key is unaffected; an unknown key is a `401`.

// The example's `main` and printing helpers are not used here.
#[allow(dead_code)]
#[path = "../examples/budget.rs"]
mod budget;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use std::net::SocketAddr;

/// Key A's budget: more than one demo stream's usage, so the first streams are allowed.
const BUDGET_A: u64 = 30;

/// Starts the example (and its demo upstream) on free loopback ports.
async fn spawn_app(keys: &str) -> SocketAddr {
    let budgets = budget::Budgets::parse(keys).expect("valid BUDGET_KEYS");
    let upstream = format!("http://{}", budget::demo_upstream::spawn().await);
    let app = budget::app(budgets, budget::Upstream::new(upstream, "demo"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// Posts a streamed chat request with `key` (if any); the status and the whole body.
async fn chat(addr: SocketAddr, key: Option<&str>, stream: bool) -> (StatusCode, String) {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let body = json!({
        "model": "demo",
        "stream": stream,
        "messages": [{ "role": "user", "content": "hi" }],
    });
    let mut request = Request::post(format!("http://{addr}/v1/chat/completions"))
        .header("content-type", "application/json");
    if let Some(key) = key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    let request = request
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let response = client.request(request).await.expect("the app answers");
    let status = response.status();
    let body = response.into_body().collect().await.expect("a whole body");
    (status, String::from_utf8(body.to_bytes().to_vec()).unwrap())
}

/// The tokens (prompt + completion) of the usage chunks in a stream the client received,
/// which must end with `[DONE]` and report usage exactly once.
fn reported_tokens(stream: &str) -> u64 {
    let data: Vec<&str> = stream
        .split("\n\n")
        .filter_map(|event| event.strip_prefix("data: "))
        .collect();
    assert_eq!(data.last(), Some(&"[DONE]"), "a whole stream: {stream}");
    let usages: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|data| serde_json::from_str::<Value>(data).expect("JSON chunks"))
        .filter_map(|chunk| chunk.get("usage").cloned())
        .collect();
    assert_eq!(usages.len(), 1, "one usage chunk: {stream}");
    ["prompt_tokens", "completion_tokens"]
        .iter()
        .map(|field| usages[0][field].as_u64().expect("token counts"))
        .sum()
}

fn json_body(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("a JSON error body ({e}): {body}"))
}

#[tokio::test]
async fn a_key_streams_until_its_budget_is_used_then_gets_429() {
    let addr = spawn_app(&format!("sk-test-a={BUDGET_A},team-b:sk-test-b=1000")).await;

    // Key A streams while what its streams reported is under its budget. A stream is charged
    // when the server drops its body, which hyper does before it writes the body's end: once
    // the client has the whole stream, the next request sees the count.
    let mut used = 0;
    let mut allowed = 0;
    while used < BUDGET_A {
        let (status, body) = chat(addr, Some("sk-test-a"), true).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "key A has used {used} of {BUDGET_A}: {body}"
        );
        used += reported_tokens(&body);
        allowed += 1;
        assert!(
            allowed <= 10,
            "key A was never refused: nothing was metered"
        );
    }
    assert!(
        allowed >= 2,
        "the demo upstream reports {used} tokens per stream: raise BUDGET_A so that two streams fit"
    );

    // Now it is refused, with what the callback counted: the sum of the usage it received.
    let (status, body) = chat(addr, Some("sk-test-a"), true).await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "key A has used {used} of {BUDGET_A} tokens, the callback did not meter: {body}"
    );
    assert_eq!(
        json_body(&body),
        json!({"error": {
            "type": "insufficient_quota",
            "code": "token_budget_exceeded",
            "message": format!(
                "API key key-1 has used {used} of its {BUDGET_A} tokens: raise its budget in BUDGET_KEYS"
            ),
        }})
    );

    // Another key is unaffected.
    let (status, body) = chat(addr, Some("sk-test-b"), true).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(reported_tokens(&body) > 0);

    // Key A stays refused; its count did not move.
    let (status, body) = chat(addr, Some("sk-test-a"), true).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        body.contains(&format!("has used {used} of its {BUDGET_A} tokens")),
        "{body}"
    );
}

#[tokio::test]
async fn unknown_missing_key_and_unstreamed_requests_are_refused() {
    let addr = spawn_app("sk-test-a=100").await;
    let unauthorized = |message: &str| {
        json!({"error": {
            "type": "authentication_error",
            "code": "invalid_api_key",
            "message": message,
        }})
    };

    let (status, body) = chat(addr, Some("sk-unknown"), true).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        json_body(&body),
        unauthorized("unknown API key: use a key listed in BUDGET_KEYS")
    );
    assert!(!body.contains("sk-unknown"), "the key is never echoed");

    let (status, body) = chat(addr, None, true).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        json_body(&body),
        unauthorized("no API key: send one as `Authorization: Bearer <key>`")
    );

    // An unstreamed answer would not be metered: refused before the upstream.
    let (status, body) = chat(addr, Some("sk-test-a"), false).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(json_body(&body)["error"]["code"], "stream_required");
}

#[test]
fn budget_keys_errors_say_what_to_write() {
    let ok = budget::Budgets::parse("team-a:sk-a=200, sk-b=1000").unwrap();
    assert_eq!(
        ok.budgets().collect::<Vec<_>>(),
        [("team-a", 200), ("key-2", 1000)]
    );
    for (spec, says) in [
        ("sk-a", "entry 1 has no budget"),
        (
            "sk-a=lots",
            "entry 1: the budget `lots` is not a whole number",
        ),
        ("sk-a=1,,sk-b=2", "entry 2 is empty"),
        ("sk-a=1,sk-a=2", "entry 2 repeats the key"),
        ("x:sk-a=1,x:sk-b=2", "entry 2 repeats the id `x`"),
        ("sk-a:sk-a=1", "entry 1: the id must be"),
    ] {
        let err = budget::Budgets::parse(spec).unwrap_err();
        assert!(err.starts_with(says), "{spec}: {err}");
    }
}
