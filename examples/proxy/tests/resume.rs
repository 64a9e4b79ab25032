//! Resumable streams end to end (`--resumable`), over loopback: a client that drops mid-stream
//! resumes with `Last-Event-ID` and gets exactly the rest; a stream runs on with no client
//! connected; `DELETE /v1/streams/{id}` stops it and its upstream; the refusals; and a stream
//! that did not ask is untouched.

mod resume_support;
use resume_support::*;

use llm_proxy as app;
use tower_llm_stream_test_support::client::{chat, data, send};
use tower_llm_stream_test_support::proxy::start_proxy;
use tower_llm_stream_test_support::raw::upstream;

use app::resume::{ResumeConfig, STREAM_ID, Store};
use http::{Request, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tower_llm_stream::provider::Providers;
use tower_llm_stream::resume::{StreamState, StreamStore};

/// The state of stream `id` in `store`.
async fn state(store: &Store, id: &str) -> StreamState {
    store
        .read(id, u64::MAX, Duration::ZERO)
        .await
        .unwrap()
        .expect("the stream is in the store")
        .state
}

#[tokio::test]
async fn a_client_that_drops_resumes_with_exactly_the_rest() {
    let upstream = paced(Duration::from_millis(40)).await;
    let (addr, _) = proxy(providers_at(Some(&upstream)), true).await;
    let request = chat("s/m", true);

    // The uninterrupted stream of the same request, not resumable.
    let whole = rest(
        open(addr, "/v1/chat/completions", request.clone(), false)
            .await
            .into_body(),
    )
    .await;
    assert!(whole.ends_with("data: [DONE]\n\n"), "{whole}");
    assert_eq!(data(&whole).len(), WORDS + 3, "{whole}");

    for k in [1, 5, WORDS] {
        let (id, first) = leave_after(addr, "/v1/chat/completions", request.clone(), k).await;
        let last = ids(&first).len().to_string();

        let resumed = resume(addr, &id, &[("last-event-id", &last)]).await;
        assert_eq!(resumed.status(), StatusCode::OK);
        assert_eq!(resumed.headers()["content-type"], "text/event-stream");
        assert_eq!(resumed.headers()["cache-control"], "no-cache");
        assert_eq!(stream_id(resumed.headers()), id);
        let second = rest(resumed.into_body()).await;
        assert_exactly_the_rest(&first, &second, &whole);
    }
}

#[tokio::test]
async fn text_completions_resume_by_the_query_too() {
    let (addr, _) = proxy(Providers::new(), true).await;
    let request =
        json!({"model": "demo/echo", "prompt": "Hi", "stream": true, "max_tokens": 10}).to_string();
    let (id, first) = leave_after(addr, "/v1/completions", request, 2).await;
    let had = ids(&first).len();
    let request = Request::get(format!("/v1/streams/{id}?last_event_id={had}"));
    let (head, second) = send(addr, request, "").await;
    assert_eq!(head.status, StatusCode::OK);
    let both = format!("{first}{second}");
    let numbers: Vec<Option<u64>> = (1..=ids(&both).len() as u64).map(Some).collect();
    assert_eq!(ids(&both), numbers, "{both}");
    let text: String = data(&both)
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|c| c["choices"][0]["text"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(text, app::demo::reply("Hi")[..10].concat());
    assert_eq!(data(&both).last(), Some(&"[DONE]"), "{both}");
}

#[tokio::test]
async fn a_stream_runs_on_with_no_client_connected() {
    let (addr, store) = proxy(Providers::new(), true).await;
    // demo/echo: a word every 30 ms, 20 words.
    let request = json!({"model": "demo/echo", "stream": true, "max_tokens": 20, "messages": [{"role": "user", "content": "Hi"}]}).to_string();
    let (id, first) = leave_after(addr, "/v1/chat/completions", request, 3).await;
    let k = ids(&first).len();
    assert_eq!(state(&store, &id).await, StreamState::Live);

    // Nobody reads; the stream ends all the same.
    let started = Instant::now();
    while state(&store, &id).await == StreamState::Live {
        assert!(started.elapsed() < BOUND, "the stream did not end");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state(&store, &id).await, StreamState::Finished);

    let resumed = resume(addr, &id, &[("last-event-id", &k.to_string())]).await;
    assert_eq!(resumed.status(), StatusCode::OK);
    let second = rest(resumed.into_body()).await;
    let numbers: Vec<Option<u64>> = (k as u64 + 1..=(k + ids(&second).len()) as u64)
        .map(Some)
        .collect();
    assert_eq!(ids(&second), numbers, "{second}");
    assert_eq!(data(&second).last(), Some(&"[DONE]"), "{second}");
    let both = format!("{first}{second}");
    let text: String = data(&both)
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(text, app::demo::reply("Hi")[..20].concat());
    // Read again from the start: the same events, as often as asked.
    let again = rest(resume(addr, &id, &[]).await.into_body()).await;
    assert_eq!(again, both);
}

#[tokio::test]
async fn delete_stops_the_stream_and_its_upstream() {
    // Two words, then nothing until the proxy closes the connection.
    let (upstream, closed_after) = stalled(vec![
        chunk_json(json!({"role": "assistant", "content": "a"}), Value::Null),
        chunk_json(json!({"content": " b"}), Value::Null),
    ])
    .await;
    let (addr, store) = proxy(providers_at(Some(&upstream)), true).await;
    let response = open(addr, "/v1/chat/completions", chat("s/m", true), true).await;
    let id = stream_id(response.headers());
    let mut body = response.into_body();
    let first = read_events(&mut body, 2).await;
    assert_eq!(ids(&first), [Some(1), Some(2)], "{first}");
    // A second reader, from the start.
    let reader = resume(addr, &id, &[]).await;

    let (head, answer) = send(addr, Request::delete(format!("/v1/streams/{id}")), "").await;
    let deleted = Instant::now();
    assert_eq!(head.status, StatusCode::OK, "{answer}");
    assert_eq!(
        serde_json::from_str::<Value>(&answer).unwrap(),
        json!({"id": id, "cancelled": true})
    );

    // Both readers end with the stream_cancelled error event.
    for text in [
        format!("{first}{}", rest(body).await),
        rest(reader.into_body()).await,
    ] {
        let last: Value = serde_json::from_str(data(&text).last().unwrap()).unwrap();
        assert_eq!(last["error"]["code"], "stream_cancelled", "{text}");
        assert_eq!(ids(&text)[..2], [Some(1), Some(2)], "{text}");
    }
    assert_eq!(state(&store, &id).await, StreamState::Cancelled);
    // The upstream request is dropped: its connection closed, within a heartbeat (2 s).
    assert_closed_soon_after(&closed_after, deleted).await;
    // Cancelled streams stay readable to their end.
    let again = rest(
        resume(addr, &id, &[("last-event-id", "2")])
            .await
            .into_body(),
    )
    .await;
    let last: Value = serde_json::from_str(data(&again).last().unwrap()).unwrap();
    assert_eq!(last["error"]["code"], "stream_cancelled", "{again}");
}

/// A `404` in the standard error shape, code `stream_not_found`.
fn assert_not_found(status: StatusCode, body: &str) {
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let body: Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
    assert_eq!(body["error"]["code"], "stream_not_found", "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
}

#[tokio::test]
async fn unknown_streams_are_404s_and_bad_ids_400s() {
    let (addr, _) = proxy(Providers::new(), true).await;
    let unknown = app::resume::new_id();
    for request in [
        Request::get(format!("/v1/streams/{unknown}")),
        Request::delete(format!("/v1/streams/{unknown}")),
        Request::get("/v1/streams/not-an-id".to_owned()),
        Request::get("/v1/streams/..%2F..%2Fetc".to_owned()),
    ] {
        let (head, body) = send(addr, request, "").await;
        assert_not_found(head.status, &body);
    }
    let (head, body) = send(
        addr,
        Request::get(format!("/v1/streams/{unknown}")).header("last-event-id", "seven"),
        "",
    )
    .await;
    assert_eq!(head.status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("invalid_last_event_id"), "{body}");
    let (head, _) = send(addr, Request::put(format!("/v1/streams/{unknown}")), "").await;
    assert_eq!(head.status, StatusCode::METHOD_NOT_ALLOWED);

    // Behind PROXY_API_KEY like the other routes.
    let config = app::Config {
        api_key: Some("proxy-secret".into()),
        resume: Some(ResumeConfig::memory(Duration::from_secs(60))),
        ..app::Config::default()
    };
    let guarded = start_proxy(config).await;
    let (head, _) = send(guarded, Request::get(format!("/v1/streams/{unknown}")), "").await;
    assert_eq!(head.status, StatusCode::UNAUTHORIZED);
    let (head, body) = send(
        guarded,
        Request::get(format!("/v1/streams/{unknown}"))
            .header("authorization", "Bearer proxy-secret"),
        "",
    )
    .await;
    assert_not_found(head.status, &body);
}

#[tokio::test]
async fn without_resumable_the_header_is_a_400_that_says_so() {
    let (addr, _) = proxy(Providers::new(), false).await;
    for path in ["/v1/chat/completions", "/v1/completions"] {
        let request = Request::post(path).header("x-resumable", "1");
        let body = json!({"model": "demo/instant", "prompt": "Hi", "stream": true, "messages": [{"role": "user", "content": "Hi"}]});
        let (head, body) = send(addr, request, body.to_string()).await;
        assert_eq!(head.status, StatusCode::BAD_REQUEST, "{body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["error"]["code"], "resumable_disabled", "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("start the proxy with --resumable"),
            "{body}"
        );
    }
    let (head, body) = send(
        addr,
        Request::get(format!("/v1/streams/{}", app::resume::new_id())),
        "",
    )
    .await;
    assert_eq!(head.status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("--resumable"), "{body}");
    // x-resumable: 0 asks for nothing.
    let request = Request::post("/v1/chat/completions").header("x-resumable", "0");
    let (head, body) = send(addr, request, chat("demo/instant", true)).await;
    assert_eq!(head.status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_stream_that_did_not_ask_is_untouched() {
    let (addr, _) = proxy(Providers::new(), true).await;
    let response = open(
        addr,
        "/v1/chat/completions",
        chat("demo/instant", true),
        false,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get(&STREAM_ID).is_none());
    let text = rest(response.into_body()).await;
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert!(ids(&text).iter().all(Option::is_none), "{text}");
    assert!(
        !text.contains("\nid: ") && !text.starts_with("id: "),
        "{text}"
    );

    // x-resumable is for streams of chat and text completions.
    let request = Request::post("/v1/chat/completions").header("x-resumable", "1");
    let (head, body) = send(addr, request, chat("demo/instant", false)).await;
    assert_eq!(head.status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("\\\"stream\\\": true"), "{body}");
    let request = Request::post("/v1/responses").header("x-resumable", "1");
    let body = json!({"model": "demo/instant", "input": "Hi", "stream": true}).to_string();
    let (head, body) = send(addr, request, body).await;
    assert_eq!(head.status, StatusCode::BAD_REQUEST, "{body}");

    // An upstream's error status is answered as it is, with no stream id.
    let limited = upstream(|mut socket| async move {
        let body = r#"{"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}}"#;
        let answer = format!(
            "HTTP/1.1 429 X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = socket.write_all(answer.as_bytes()).await;
    })
    .await;
    let (addr, _) = proxy(providers_at(Some(&limited)), true).await;
    let request = Request::post("/v1/chat/completions").header("x-resumable", "1");
    let (head, body) = send(addr, request, chat("s/m", true)).await;
    assert_eq!(head.status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(head.headers.get(&STREAM_ID).is_none(), "{:?}", head.headers);
    assert!(body.contains("rate_limit_exceeded"), "{body}");
}
