//! Fallbacks end to end, over loopback: three OpenAI-compatible providers `a`, `b`, `c`, each
//! a scripted upstream, with `--fallback a/m=b/m,c/m`. Each way `a` can fail before its stream
//! commits hands the request to `b` unseen by the client; the client's own errors and failures
//! after the commit do not.

use llm_proxy as app;
use tower_llm_stream_test_support::client::{chat, data, post};
use tower_llm_stream_test_support::log;
use tower_llm_stream_test_support::proxy::start_proxy;
use tower_llm_stream_test_support::raw::{
    Upstream, chunk, closed_within, head, refusing, upstream,
};

use http::StatusCode;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tower_llm_stream::provider::{Provider, ProviderKind, Providers};

/// The proxy's head and idle timeout in these tests.
const TIMEOUT: Duration = Duration::from_secs(1);

/// How long a client waits for the proxy's whole answer.
const BOUND: Duration = Duration::from_secs(10);

/// The header line that closes the connection after a response of [`head`]: never pooled.
const CLOSE: &str = "connection: close\r\n";

/// A response head whose body ends when the connection closes.
fn head_until_close(status: u16, content_type: &str) -> String {
    format!("HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\nconnection: close\r\n\r\n")
}

/// A whole response with a content-length body.
fn whole(status: u16, content_type: &str, extra: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n{extra}\r\n{body}",
        body.len()
    )
}

/// An upstream's role chunk: no content yet.
fn role_chunk(id: &str) -> String {
    format!(
        "data: {{\"id\":\"{id}\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{\"role\":\"assistant\",\"content\":\"\"}},\"finish_reason\":null}}]}}\n\n"
    )
}

fn content_chunk(id: &str, text: &str) -> String {
    format!(
        "data: {{\"id\":\"{id}\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{text}\"}},\"finish_reason\":null}}]}}\n\n"
    )
}

/// A standard OpenAI chat stream, `id` on every chunk, its text in two content chunks.
fn good_stream(id: &str, text: (&str, &str)) -> Vec<u8> {
    let mut out = head(200, "text/event-stream", CLOSE).into_bytes();
    out.extend(chunk(role_chunk(id).as_bytes()));
    out.extend(chunk(content_chunk(id, text.0).as_bytes()));
    out.extend(chunk(content_chunk(id, text.1).as_bytes()));
    out.extend(chunk(format!(
        "data: {{\"id\":\"{id}\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{}},\"finish_reason\":\"stop\"}}],\"usage\":{{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}}}\n\n"
    ).as_bytes()));
    out.extend(chunk(b"data: [DONE]\n\n"));
    out.extend(b"0\r\n\r\n");
    out
}

/// `b`: the good stream, "from b".
async fn good_b() -> Upstream {
    upstream(|mut socket| async move {
        let _ = socket.write_all(&good_stream("b1", ("from", " b"))).await;
    })
    .await
}

/// `c`: also good ("from c"), so that a request that reached it would show.
async fn good_c() -> Upstream {
    upstream(|mut socket| async move {
        let _ = socket.write_all(&good_stream("c1", ("from", " c"))).await;
    })
    .await
}

/// An upstream that answers with `status` and an OpenAI error JSON.
async fn failing(status: u16, code: &'static str, message: &'static str) -> Upstream {
    upstream(move |mut socket| async move {
        let body = json!({"error": {"message": message, "type": "server_error", "code": code}})
            .to_string();
        let _ = socket
            .write_all(whole(status, "application/json", "", &body).as_bytes())
            .await;
    })
    .await
}

/// The proxy, with providers `a`, `b`, `c` at the upstreams and `a/m` falling back to `b/m`
/// then `c/m`.
async fn proxy(a: &Upstream, b: &Upstream, c: &Upstream) -> SocketAddr {
    proxy_with(a, b, c, &["b/m", "c/m"]).await
}

/// The proxy, with `a/m` falling back to `chain`.
async fn proxy_with(a: &Upstream, b: &Upstream, c: &Upstream, chain: &[&str]) -> SocketAddr {
    let provider = |name: &str, up: &Upstream| {
        Provider::new(
            name,
            ProviderKind::OpenAiCompatible,
            &format!("http://{}/v1", up.addr()),
        )
        .unwrap()
    };
    let providers = Providers::new()
        .with(provider("a", a))
        .with(provider("b", b))
        .with(provider("c", c));
    let mut config = app::Config {
        providers,
        timeout: TIMEOUT,
        ..app::Config::default()
    };
    config.fallbacks.insert(
        "a/m".into(),
        chain.iter().map(|m| (*m).to_owned()).collect(),
    );
    start_proxy(config).await
}

fn served_by(headers: &http::HeaderMap) -> &str {
    headers
        .get(&app::SERVED_BY)
        .map(|v| v.to_str().unwrap())
        .unwrap_or("(none)")
}

/// The client got exactly `b`'s stream: one role chunk (b's), b's text, one finish, `[DONE]`,
/// nothing of another attempt; served by `b/m`.
fn assert_b_stream(status: StatusCode, headers: &http::HeaderMap, body: &str) {
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(served_by(headers), "b/m", "{headers:?}");
    assert!(
        headers
            .get("content-type")
            .is_some_and(|v| v.to_str().unwrap().starts_with("text/event-stream")),
        "{headers:?}"
    );
    let events = data(body);
    assert_eq!(events.last(), Some(&"[DONE]"), "{body}");
    assert_eq!(
        events.iter().filter(|e| **e == "[DONE]").count(),
        1,
        "{body}"
    );
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap_or_else(|e| panic!("{e}: {d}\n{body}")))
        .collect();
    for chunk in &chunks {
        assert!(chunk.get("error").is_none(), "an error event: {body}");
        assert_eq!(chunk["id"], "b1", "a chunk not of b: {body}");
    }
    let roles: Vec<&Value> = chunks
        .iter()
        .filter(|c| !c["choices"][0]["delta"]["role"].is_null())
        .collect();
    assert_eq!(roles.len(), 1, "exactly one role chunk: {body}");
    assert_eq!(roles[0]["id"], "b1", "{body}");
    assert_eq!(
        chunks[0]["choices"][0]["delta"]["role"], "assistant",
        "{body}"
    );
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "from b", "{body}");
    let finishes: Vec<&Value> = chunks
        .iter()
        .filter(|c| !c["choices"][0]["finish_reason"].is_null())
        .collect();
    assert_eq!(finishes.len(), 1, "{body}");
    assert_eq!(finishes[0]["choices"][0]["finish_reason"], "stop", "{body}");
    assert_eq!(
        chunks.last().unwrap()["usage"]["total_tokens"],
        5,
        "the usage, last: {body}"
    );
}

/// `a` fails as scripted: the client gets b's stream, `c` nothing. Returns the time taken and
/// the response's headers.
async fn falls_back_to_b(a: Upstream, a_hits: usize) -> (Duration, http::HeaderMap) {
    let (b, c) = (good_b().await, good_c().await);
    let proxy = proxy(&a, &b, &c).await;
    let started = Instant::now();
    let (status, headers, body) =
        post(proxy, "/v1/chat/completions", chat("a/m", true), BOUND).await;
    let took = started.elapsed();
    assert_b_stream(status, &headers, &body);
    assert_eq!(a.hits(), a_hits, "requests to a");
    assert_eq!(b.hits(), 1, "requests to b");
    assert_eq!(c.hits(), 0, "requests to c");
    // b got the request for its own model.
    let request = &b.requests()[0];
    assert!(
        request.starts_with("POST /v1/chat/completions "),
        "{request}"
    );
    assert!(request.contains("\"model\":\"m\""), "{request}");
    (took, headers)
}

/// Holds `socket` open until the proxy closes it (5 s at most).
async fn hold(mut socket: TcpStream) {
    closed_within(&mut socket, Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_refused_connection_falls_back() {
    falls_back_to_b(refusing().await, 0).await;
}

#[tokio::test]
async fn a_connection_closed_before_the_head_falls_back() {
    let a = upstream(|socket| async move { drop(socket) }).await;
    falls_back_to_b(a, 1).await;
}

#[tokio::test]
async fn a_connection_reset_before_the_head_falls_back() {
    let a = upstream(|socket| async move {
        socket.set_zero_linger().unwrap();
        drop(socket);
    })
    .await;
    falls_back_to_b(a, 1).await;
}

#[tokio::test]
async fn no_head_within_the_timeout_falls_back() {
    let a = upstream(hold).await;
    let (took, _) = falls_back_to_b(a, 1).await;
    assert!(
        took >= TIMEOUT - Duration::from_millis(50),
        "answered before the head timeout: {took:?}"
    );
    // Bounded, with room for a loaded machine.
    assert!(took < TIMEOUT * 6, "{took:?}");
}

#[tokio::test]
async fn a_429_falls_back_and_its_retry_after_is_logged() {
    let log = log::global();
    let a = upstream(|mut socket| async move {
        let body = r#"{"error":{"message":"slow down","type":"rate_limit_error","code":"rate_limit_exceeded"}}"#;
        let _ = socket
            .write_all(whole(429, "application/json", "retry-after: 7\r\n", body).as_bytes())
            .await;
    })
    .await;
    let (took, headers) = falls_back_to_b(a, 1).await;
    // Noted, never slept on; a's header is not in b's answer.
    assert!(headers.get("retry-after").is_none(), "{headers:?}");
    // Not slept on: well under the retry-after of 7 s.
    assert!(took < Duration::from_secs(6), "{took:?}");
    // The log is the whole binary's: this test's lines are those of a's 429.
    let ours = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.contains("a/m: 429"))
            .map(str::to_owned)
            .collect()
    };
    let mut lines = ours(&log.text());
    for _ in 0..40 {
        if lines.iter().any(|l| l.contains("stream ended")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        lines = ours(&log.text());
    }
    let text = log.text();
    let line = lines
        .iter()
        .find(|l| l.contains("falling back"))
        .unwrap_or_else(|| panic!("no fallback from a's 429 in the log:\n{text}"));
    assert!(line.contains(" WARN "), "{line}");
    assert!(
        line.ends_with("attempt=1 failed=a/m: 429 rate_limit_exceeded (retry-after 7)"),
        "{line}"
    );
    // The stream's record names the failed attempt too.
    let ended = lines
        .iter()
        .find(|l| l.contains("stream ended"))
        .unwrap_or_else(|| panic!("no stream ended with a's 429 in the log:\n{text}"));
    assert!(
        ended.contains(" fallbacks=a/m: 429 rate_limit_exceeded (retry-after 7) "),
        "{ended}"
    );
    assert!(ended.contains("gen_ai.provider.name=\"b\""), "{ended}");
    assert!(
        ended.ends_with("stream ended outcome=\"completed\""),
        "{ended}"
    );
}

#[tokio::test]
async fn a_500_falls_back() {
    falls_back_to_b(failing(500, "internal", "a broke").await, 1).await;
}

#[tokio::test]
async fn a_503_falls_back() {
    falls_back_to_b(failing(503, "unavailable", "a is down").await, 1).await;
}

#[tokio::test]
async fn an_error_event_before_content_falls_back_and_the_attempt_is_dropped_at_once() {
    // a: a role chunk, then an error event; then it keeps its socket open and reports whether
    // the proxy closed it within 1 s. b answers only once a has reported: the proxy drops the
    // failed attempt before (not after) the served stream.
    let (report, reported) = tokio::sync::watch::channel(None::<bool>);
    let report = Arc::new(report);
    let a = upstream(move |mut socket| {
        let report = report.clone();
        async move {
            let mut out = head(200, "text/event-stream", CLOSE).into_bytes();
            out.extend(chunk(role_chunk("a1").as_bytes()));
            out.extend(chunk(
                b"data: {\"error\":{\"type\":\"server_error\",\"code\":\"overloaded\",\"message\":\"x\"}}\n\n",
            ));
            socket.write_all(&out).await.unwrap();
            let closed = closed_within(&mut socket, Duration::from_secs(3)).await;
            report.send_replace(Some(closed));
        }
    })
    .await;
    let waiting = reported.clone();
    let b = upstream(move |mut socket| {
        let mut waiting = waiting.clone();
        async move {
            let _ = tokio::time::timeout(Duration::from_secs(3), waiting.wait_for(Option::is_some))
                .await;
            let _ = socket.write_all(&good_stream("b1", ("from", " b"))).await;
        }
    })
    .await;
    let c = good_c().await;
    let proxy = proxy(&a, &b, &c).await;
    let (status, headers, body) =
        post(proxy, "/v1/chat/completions", chat("a/m", true), BOUND).await;
    assert_b_stream(status, &headers, &body);
    assert!(
        !body.contains("a1"),
        "a's role chunk reached the client: {body}"
    );
    assert!(!body.contains("overloaded"), "{body}");
    assert_eq!((a.hits(), b.hits(), c.hits()), (1, 1, 0));
    assert_eq!(
        *reported.borrow(),
        Some(true),
        "the failed attempt's upstream connection was not closed within 1 s"
    );
}

#[tokio::test]
async fn a_stream_cut_after_its_role_chunk_falls_back() {
    // The connection closes after the role chunk, mid chunked body.
    let a = upstream(|mut socket| async move {
        let mut out = head(200, "text/event-stream", CLOSE).into_bytes();
        out.extend(chunk(role_chunk("a1").as_bytes()));
        let _ = socket.write_all(&out).await;
    })
    .await;
    falls_back_to_b(a, 1).await;
}

#[tokio::test]
async fn a_stream_that_ends_after_its_role_chunk_falls_back() {
    // The body ends cleanly (the connection closes: the end of a body without a length) after
    // the role chunk: a truncation before any content.
    let a = upstream(|mut socket| async move {
        let mut out = head_until_close(200, "text/event-stream").into_bytes();
        out.extend(role_chunk("a1").as_bytes());
        let _ = socket.write_all(&out).await;
    })
    .await;
    falls_back_to_b(a, 1).await;
}

#[tokio::test]
async fn silence_after_the_role_chunk_falls_back_at_the_idle_timeout() {
    let a = upstream(|mut socket| async move {
        let mut out = head(200, "text/event-stream", CLOSE).into_bytes();
        out.extend(chunk(role_chunk("a1").as_bytes()));
        if socket.write_all(&out).await.is_ok() {
            hold(socket).await;
        }
    })
    .await;
    let (took, _) = falls_back_to_b(a, 1).await;
    assert!(
        took >= TIMEOUT - Duration::from_millis(50),
        "answered before the idle timeout: {took:?}"
    );
    // Bounded, with room for a loaded machine.
    assert!(took < TIMEOUT * 6, "{took:?}");
}

#[tokio::test]
async fn the_clients_own_errors_do_not_fall_back() {
    for (status, code) in [
        (400, "invalid_value"),
        (401, "invalid_api_key"),
        (404, "model_not_found"),
    ] {
        let a = upstream(move |mut socket| async move {
            let body = json!({"error": {"message": format!("a says {status}"), "type": "invalid_request_error", "param": null, "code": code}}).to_string();
            let _ = socket
                .write_all(whole(status, "application/json", "", &body).as_bytes())
                .await;
        })
        .await;
        let (b, c) = (good_b().await, good_c().await);
        let proxy = proxy(&a, &b, &c).await;
        let (got, headers, body) =
            post(proxy, "/v1/chat/completions", chat("a/m", true), BOUND).await;
        assert_eq!(got.as_u16(), status, "{body}");
        assert_eq!(served_by(&headers), "a/m", "{headers:?}");
        let error: Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: not JSON: {body}"));
        assert_eq!(error["error"]["code"], code, "{body}");
        assert_eq!(
            error["error"]["message"],
            format!("a says {status}"),
            "{body}"
        );
        assert!(error["error"]["type"].is_string(), "{body}");
        assert_eq!(
            (a.hits(), b.hits(), c.hits()),
            (1, 0, 0),
            "{status}: requests to a, b, c"
        );
    }
}

#[tokio::test]
async fn no_fallback_after_the_first_content() {
    // A role chunk, one content chunk, then the connection closes (the end of the body).
    let a = upstream(|mut socket| async move {
        let mut out = head_until_close(200, "text/event-stream").into_bytes();
        out.extend(role_chunk("a1").as_bytes());
        out.extend(content_chunk("a1", "partial").as_bytes());
        let _ = socket.write_all(&out).await;
    })
    .await;
    let (b, c) = (good_b().await, good_c().await);
    let proxy = proxy(&a, &b, &c).await;
    let (status, headers, body) =
        post(proxy, "/v1/chat/completions", chat("a/m", true), BOUND).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(served_by(&headers), "a/m", "{headers:?}");
    let events: Vec<Value> = data(&body)
        .iter()
        .map(|d| serde_json::from_str(d).unwrap_or_else(|e| panic!("{e}: {d}\n{body}")))
        .collect();
    assert_eq!(events.len(), 3, "role, partial, error: {body}");
    assert_eq!(events[0]["id"], "a1", "{body}");
    assert_eq!(
        events[0]["choices"][0]["delta"]["role"], "assistant",
        "{body}"
    );
    assert_eq!(events[1]["id"], "a1", "{body}");
    assert_eq!(
        events[1]["choices"][0]["delta"]["content"], "partial",
        "{body}"
    );
    assert_eq!(events[2]["error"]["code"], "stream_truncated", "{body}");
    assert!(!body.contains("from"), "{body}");
    assert_eq!((a.hits(), b.hits(), c.hits()), (1, 0, 0));
}

#[tokio::test]
async fn when_every_target_fails_the_last_failure_is_the_answer() {
    let a = failing(503, "a_down", "a is down").await;
    let b = failing(503, "b_down", "b is down").await;
    let c = failing(500, "c_broke", "c broke").await;
    let proxy = proxy(&a, &b, &c).await;
    let (status, headers, body) =
        post(proxy, "/v1/chat/completions", chat("a/m", true), BOUND).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert_eq!(served_by(&headers), "c/m", "{headers:?}");
    let error: Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: not JSON: {body}"));
    let error = error["error"]
        .as_object()
        .expect("the standard error shape");
    assert_eq!(error["code"], "c_broke", "{body}");
    assert_eq!(error["message"], "c broke", "{body}");
    assert!(error["type"].is_string(), "{body}");
    assert_eq!((a.hits(), b.hits(), c.hits()), (1, 1, 1));
}

#[tokio::test]
async fn a_model_without_fallbacks_does_not_fall_back() {
    let a = good_c().await;
    let b = failing(503, "b_down", "b is down").await;
    let c = good_c().await;
    let proxy = proxy(&a, &b, &c).await;
    let (status, headers, body) =
        post(proxy, "/v1/chat/completions", chat("b/m", true), BOUND).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(served_by(&headers), "b/m", "{headers:?}");
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"]["code"], "b_down", "{body}");
    assert_eq!((a.hits(), b.hits(), c.hits()), (0, 1, 0));
}

#[tokio::test]
async fn a_whole_answer_falls_back_too() {
    let a = failing(502, "bad_gateway", "a's gateway").await;
    let b = upstream(|mut socket| async move {
        let body = json!({
            "id": "b-whole", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "from b"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
        })
        .to_string();
        let _ = socket
            .write_all(whole(200, "application/json", "", &body).as_bytes())
            .await;
    })
    .await;
    let c = good_c().await;
    let proxy = proxy(&a, &b, &c).await;
    let (status, headers, body) =
        post(proxy, "/v1/chat/completions", chat("a/m", false), BOUND).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(served_by(&headers), "b/m", "{headers:?}");
    let completion: Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: not JSON: {body}"));
    assert_eq!(completion["id"], "b-whole", "{body}");
    assert_eq!(completion["object"], "chat.completion", "{body}");
    assert_eq!(
        completion["choices"][0]["message"]["content"], "from b",
        "{body}"
    );
    assert_eq!((a.hits(), b.hits(), c.hits()), (1, 1, 0));
    let request = &b.requests()[0];
    assert!(request.contains("\"model\":\"m\""), "{request}");
    assert!(request.contains("\"stream\":false"), "{request}");
}

/// An Anthropic Messages stream from `a/m`: `a` fails as scripted, the client gets b's text
/// as an Anthropic event stream, nothing of a's.
async fn anthropic_falls_back_to_b(a: Upstream) {
    let (b, c) = (good_b().await, good_c().await);
    let proxy = proxy(&a, &b, &c).await;
    let request = json!({"model": "a/m", "max_tokens": 50, "stream": true, "messages": [{"role": "user", "content": "Hi"}]});
    let (status, headers, body) = post(proxy, "/v1/messages", request.to_string(), BOUND).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(served_by(&headers), "b/m", "{headers:?}");
    let events: Vec<(&str, Value)> = body
        .split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let kind = e
                .lines()
                .find_map(|l| l.strip_prefix("event: "))
                .unwrap_or_else(|| panic!("an event without a type: {e:?}\n{body}"));
            let data = e
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .unwrap_or_else(|| panic!("an event without data: {e:?}\n{body}"));
            (kind, serde_json::from_str(data).unwrap())
        })
        .collect();
    let kinds: Vec<&str> = events.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        kinds,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ],
        "{body}"
    );
    for (kind, data) in &events {
        assert_eq!(data["type"], *kind, "{body}");
    }
    let text: String = events
        .iter()
        .filter(|(k, _)| *k == "content_block_delta")
        .filter_map(|(_, d)| d["delta"]["text"].as_str())
        .collect();
    assert_eq!(text, "from b", "{body}");
    assert_eq!(events[5].1["delta"]["stop_reason"], "end_turn", "{body}");
    assert_eq!(events[5].1["usage"]["output_tokens"], 2, "{body}");
    assert_eq!((a.hits(), b.hits(), c.hits()), (1, 1, 0));
    // Each target got the request translated into chat, for its own model.
    for request in [&a.requests()[0], &b.requests()[0]] {
        assert!(
            request.starts_with("POST /v1/chat/completions "),
            "{request}"
        );
        assert!(request.contains("\"model\":\"m\""), "{request}");
    }
}

#[tokio::test]
async fn an_anthropic_client_falls_back_too() {
    anthropic_falls_back_to_b(failing(503, "a_down", "a is down").await).await;
}

#[tokio::test]
async fn an_anthropic_client_sees_nothing_of_an_attempt_that_failed_after_its_role_chunk() {
    let a = upstream(|mut socket| async move {
        let mut out = head(200, "text/event-stream", CLOSE).into_bytes();
        out.extend(chunk(role_chunk("a1").as_bytes()));
        out.extend(chunk(
            b"data: {\"error\":{\"type\":\"server_error\",\"code\":\"overloaded\",\"message\":\"x\"}}\n\n",
        ));
        out.extend(b"0\r\n\r\n");
        let _ = socket.write_all(&out).await;
    })
    .await;
    anthropic_falls_back_to_b(a).await;
}

#[tokio::test]
async fn a_whole_anthropic_answer_falls_back_too() {
    // Translated, the request asks the providers for a stream, folded into one message.
    let a = failing(503, "a_down", "a is down").await;
    let (b, c) = (good_b().await, good_c().await);
    let proxy = proxy(&a, &b, &c).await;
    let request =
        json!({"model": "a/m", "max_tokens": 50, "messages": [{"role": "user", "content": "Hi"}]});
    let (status, headers, body) = post(proxy, "/v1/messages", request.to_string(), BOUND).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let message: Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: not JSON: {body}"));
    assert_eq!(message["type"], "message", "{body}");
    assert_eq!(message["content"][0]["type"], "text", "{body}");
    assert_eq!(message["content"][0]["text"], "from b", "{body}");
    assert_eq!(message["stop_reason"], "end_turn", "{body}");
    assert_eq!((a.hits(), b.hits(), c.hits()), (1, 1, 0));
    // A whole answer folded from the stream still names the target that answered.
    assert_eq!(served_by(&headers), "b/m", "{headers:?}");
}

#[tokio::test]
async fn a_fallback_that_cannot_take_the_request_is_skipped() {
    // `nope/x` routes nowhere (the command line refuses it; a `Config` built in code may not).
    let a = failing(503, "a_down", "a is down").await;
    let (b, c) = (good_b().await, good_c().await);
    let proxy = proxy_with(&a, &b, &c, &["nope/x", "b/m"]).await;
    let (status, headers, body) =
        post(proxy, "/v1/chat/completions", chat("a/m", true), BOUND).await;
    assert_b_stream(status, &headers, &body);
    assert_eq!((a.hits(), b.hits(), c.hits()), (1, 1, 0));
    // With nothing left to try, a's failure is the answer.
    let a = failing(503, "a_down", "a is down").await;
    let proxy = proxy_with(&a, &b, &c, &["nope/x"]).await;
    let (status, headers, body) =
        post(proxy, "/v1/chat/completions", chat("a/m", true), BOUND).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(served_by(&headers), "a/m", "{headers:?}");
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"]["code"], "a_down", "{body}");
    assert_eq!((a.hits(), b.hits(), c.hits()), (1, 1, 0));
}

#[test]
fn every_fallback_model_must_route() {
    let args = |list: &[&str]| {
        list.iter()
            .map(|s| (*s).to_owned())
            .collect::<Vec<_>>()
            .into_iter()
    };
    let error = app::cli::parse_args(args(&["--fallback", "demo/echo=nope/x"])).unwrap_err();
    assert!(error.contains("\"nope/x\""), "{error}");
    assert!(error.contains("does not route"), "{error}");
    let options = app::cli::parse_args(args(&["--fallback", "demo/echo=demo/instant"])).unwrap();
    assert_eq!(
        options.config.fallbacks.get("demo/echo"),
        Some(&vec!["demo/instant".to_owned()])
    );
}
