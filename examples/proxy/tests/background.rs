//! Background responses end to end (`--resumable`), over loopback: a Responses stream sent
//! with `"background": true` resumes with `GET /v1/responses/{id}?stream=true&starting_after=N`
//! with exactly the events after N; `GET /v1/responses/{id}` answers the response so far and
//! final; `POST /v1/responses/{id}/cancel` stops it and its upstream; the refusals.

mod resume_support;
use resume_support::{
    BOUND, assert_closed_soon_after, open, providers_at, proxy, read_events, rest, stalled,
};

use llm_proxy as app;
use tower_llm_stream_test_support::client::send;

use http::{Request, StatusCode};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tower_llm_stream::provider::Providers;
use tower_llm_stream::resume::{StreamState, StreamStore};

fn request(model: &str, max_output_tokens: u64) -> String {
    json!({"model": model, "input": "Hi", "stream": true, "background": true,
           "max_output_tokens": max_output_tokens})
    .to_string()
}

/// The events of a Responses stream: each block's `data:` JSON.
fn events(text: &str) -> Vec<Value> {
    text.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let data = block
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .unwrap_or_else(|| panic!("an event without data: {block:?}"));
            serde_json::from_str(data).unwrap()
        })
        .collect()
}

/// The text the events' deltas make.
fn text(events: &[Value]) -> String {
    events
        .iter()
        .filter(|e| e["type"] == "response.output_text.delta")
        .map(|e| e["delta"].as_str().unwrap())
        .collect()
}

/// The response id `response.created` carries: the proxy's, `resp_` and 32 hex digits.
fn response_id(events: &[Value]) -> String {
    assert_eq!(events[0]["type"], "response.created", "{events:?}");
    let id = events[0]["response"]["id"].as_str().unwrap().to_owned();
    let hex = id.strip_prefix("resp_").unwrap_or_else(|| panic!("{id}"));
    assert_eq!(hex.len(), 32, "{id}");
    assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    id
}

async fn get(addr: SocketAddr, path: &str) -> (StatusCode, String) {
    let (head, body) = send(addr, Request::get(path), "").await;
    (head.status, body)
}

#[tokio::test]
async fn a_background_response_resumes_after_its_last_sequence_number() {
    let (addr, _) = proxy(Providers::new(), true).await;
    let reply = app::demo::reply("Hi")[..12].concat();
    for k in [1, 4, 9] {
        let response = open(addr, "/v1/responses", request("demo/echo", 12), false).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        // Numbered by their sequence_number, not by SSE ids.
        assert!(response.headers().get("x-stream-id").is_none());
        let mut body = response.into_body();
        let first = read_events(&mut body, k).await;
        drop(body);
        assert!(
            !first.contains("\nid: ") && !first.starts_with("id: "),
            "{first}"
        );
        let had = events(&first);
        let id = response_id(&had);
        let last = had.last().unwrap()["sequence_number"].as_u64().unwrap();

        let (status, second) = get(
            addr,
            &format!("/v1/responses/{id}?stream=true&starting_after={last}"),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{second}");
        let both: Vec<Value> = events(&format!("{first}{second}"));
        let numbers: Vec<u64> = both
            .iter()
            .map(|e| e["sequence_number"].as_u64().unwrap())
            .collect();
        let expected: Vec<u64> = (0..both.len() as u64).collect();
        assert_eq!(numbers, expected, "no gap, no duplicate (k = {k})");
        assert_eq!(text(&both), reply);
        let terminal = both.last().unwrap();
        assert_eq!(terminal["type"], "response.incomplete", "{terminal}");
        // Every snapshot of the response carries the proxy's id.
        for event in both.iter().filter(|e| e.get("response").is_some()) {
            assert_eq!(event["response"]["id"], id.as_str(), "{event}");
            assert_eq!(event["response"]["background"], true, "{event}");
        }

        // From the start, as often as asked: the same bytes.
        let (_, again) = get(addr, &format!("/v1/responses/{id}?stream=true")).await;
        assert_eq!(again, format!("{first}{second}"));
        // After the terminal event: nothing more.
        let end = numbers.last().unwrap();
        let (status, none) = get(
            addr,
            &format!("/v1/responses/{id}?stream=true&starting_after={end}"),
        )
        .await;
        assert_eq!((status, none.as_str()), (StatusCode::OK, ""));
    }
}

#[tokio::test]
async fn get_answers_the_response_so_far_then_the_final_one() {
    let (addr, store) = proxy(Providers::new(), true).await;
    // demo/slow: a word every 250 ms.
    let response = open(addr, "/v1/responses", request("demo/slow", 6), false).await;
    let mut body = response.into_body();
    let first = events(&read_events(&mut body, 6).await);
    drop(body);
    let id = response_id(&first);

    let (status, so_far) = get(addr, &format!("/v1/responses/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{so_far}");
    let so_far: Value = serde_json::from_str(&so_far).unwrap();
    assert_eq!(so_far["id"], id.as_str());
    assert_eq!(so_far["object"], "response");
    assert_eq!(so_far["status"], "in_progress", "{so_far}");
    assert_eq!(so_far["background"], true);
    let partial = so_far["output"][0]["content"][0]["text"]
        .as_str()
        .unwrap_or("");
    let reply = app::demo::reply("Hi")[..6].concat();
    assert!(
        !partial.is_empty() && reply.starts_with(partial) && partial.len() < reply.len(),
        "{partial:?} of {reply:?}"
    );

    let started = Instant::now();
    while store
        .read(&id, u64::MAX, Duration::ZERO)
        .await
        .unwrap()
        .unwrap()
        .state
        .is_live()
    {
        assert!(started.elapsed() < BOUND, "the stream did not end");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, whole) = get(addr, &format!("/v1/responses/{id}?stream=true")).await;
    let terminal = events(&whole).pop().unwrap();
    let (status, last) = get(addr, &format!("/v1/responses/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    let last: Value = serde_json::from_str(&last).unwrap();
    // The terminal event's response, as it is.
    assert_eq!(last, terminal["response"]);
    assert_eq!(last["status"], "incomplete");
    assert_eq!(last["output"][0]["content"][0]["text"], reply.as_str());
}

#[tokio::test]
async fn cancel_stops_the_response_and_its_upstream() {
    // A Responses upstream that says two events, then nothing until the proxy lets go.
    let created = json!({"type": "response.created", "sequence_number": 0,
        "response": {"id": "resp_upstream", "object": "response", "status": "in_progress", "model": "m", "output": []}});
    let delta = json!({"type": "response.output_text.delta", "sequence_number": 1,
        "item_id": "msg_1", "output_index": 0, "content_index": 0, "delta": "Hello"});
    let blocks = [created, delta].map(|event| {
        format!(
            "event: {}\ndata: {event}\n\n",
            event["type"].as_str().unwrap()
        )
    });
    let (upstream, closed_at) = stalled(blocks.to_vec()).await;
    let (addr, store) = proxy(providers_at(Some(&upstream)), true).await;
    let response = open(addr, "/v1/responses", request("s/m", 100), false).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let first = read_events(&mut body, 2).await;
    let had = events(&first);
    let id = response_id(&had);
    // The upstream's own id is not the one the client has.
    assert!(!first.contains("resp_upstream"), "{first}");

    let (head, answer) = send(
        addr,
        Request::post(format!("/v1/responses/{id}/cancel")),
        "",
    )
    .await;
    let cancelled = Instant::now();
    assert_eq!(head.status, StatusCode::OK, "{answer}");
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["id"], id.as_str());
    assert_eq!(answer["status"], "cancelled", "{answer}");

    // The client's stream ends with the error event, numbered next.
    let all = events(&format!("{first}{}", rest(body).await));
    let last = all.last().unwrap();
    assert_eq!(last["type"], "error", "{all:?}");
    assert_eq!(last["code"], "stream_cancelled", "{last}");
    assert_eq!(last["sequence_number"], all.len() as u64 - 1, "{all:?}");
    assert_eq!(
        store
            .read(&id, u64::MAX, Duration::ZERO)
            .await
            .unwrap()
            .unwrap()
            .state,
        StreamState::Cancelled
    );
    assert_closed_soon_after(&closed_at, cancelled).await;
    // Nothing was stored after the cancel's answer: it was the response as it ends.
    let (_, last) = get(addr, &format!("/v1/responses/{id}")).await;
    let last: Value = serde_json::from_str(&last).unwrap();
    assert_eq!(last["output"], answer["output"], "{last}");
    // Cancelling again is no error: the response as it ended.
    let (head, again) = send(
        addr,
        Request::post(format!("/v1/responses/{id}/cancel")),
        "",
    )
    .await;
    assert_eq!(head.status, StatusCode::OK, "{again}");
    let again: Value = serde_json::from_str(&again).unwrap();
    assert_eq!(again["status"], "cancelled", "{again}");
    assert_eq!(again["output"][0]["content"][0]["text"], "Hello", "{again}");
}

/// An error in the standard (OpenAI) shape with this status and code.
fn assert_error(status: StatusCode, body: &str, expected: StatusCode, code: &str) {
    assert_eq!(status, expected, "{body}");
    let body: Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
}

#[tokio::test]
async fn the_refusals_say_what_to_do() {
    let (addr, _) = proxy(Providers::new(), true).await;
    // Not a stream.
    let body = json!({"model": "demo/echo", "input": "Hi", "background": true}).to_string();
    let (head, answer) = send(addr, Request::post("/v1/responses"), body.clone()).await;
    assert_error(
        head.status,
        &answer,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    assert!(answer.contains("stream"), "{answer}");
    // Not a boolean.
    let body = json!({"model": "demo/echo", "input": "Hi", "stream": true, "background": "yes"})
        .to_string();
    let (head, answer) = send(addr, Request::post("/v1/responses"), body.clone()).await;
    assert_error(
        head.status,
        &answer,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    // `false` is an ordinary stream.
    let body = json!({"model": "demo/instant", "input": "Hi", "stream": true, "background": false})
        .to_string();
    let (head, answer) = send(addr, Request::post("/v1/responses"), body.clone()).await;
    assert_eq!(head.status, StatusCode::OK, "{answer}");
    let id = events(&answer)[0]["response"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, answer) = get(addr, &format!("/v1/responses/{id}")).await;
    assert_error(status, &answer, StatusCode::NOT_FOUND, "response_not_found");

    // Unknown, malformed and expired ids.
    let unknown = format!("resp_{}", "0".repeat(32));
    for path in [
        format!("/v1/responses/{unknown}"),
        format!("/v1/responses/{unknown}?stream=true"),
        "/v1/responses/nothing".to_owned(),
        "/v1/responses/resp_..%2F..".to_owned(),
    ] {
        let (status, answer) = get(addr, &path).await;
        assert_error(status, &answer, StatusCode::NOT_FOUND, "response_not_found");
        assert!(answer.contains("--resume-ttl"), "{answer}");
    }
    let (head, answer) = send(
        addr,
        Request::post(format!("/v1/responses/{unknown}/cancel")),
        "",
    )
    .await;
    assert_error(
        head.status,
        &answer,
        StatusCode::NOT_FOUND,
        "response_not_found",
    );

    // A starting_after that is not a number; a method the path does not take.
    let response = open(addr, "/v1/responses", request("demo/instant", 3), false).await;
    let id = response_id(&events(&rest(response.into_body()).await));
    let (status, answer) = get(
        addr,
        &format!("/v1/responses/{id}?stream=true&starting_after=x"),
    )
    .await;
    assert_error(
        status,
        &answer,
        StatusCode::BAD_REQUEST,
        "invalid_starting_after",
    );
    let (head, answer) = send(addr, Request::delete(format!("/v1/responses/{id}")), "").await;
    assert_error(
        head.status,
        &answer,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
    assert_eq!(head.headers["allow"], "GET");
    let (head, answer) = send(addr, Request::get(format!("/v1/responses/{id}/cancel")), "").await;
    assert_error(
        head.status,
        &answer,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );

    // Without --resumable: a 400 that names the flag, and no response to read.
    let (addr, _) = proxy(Providers::new(), false).await;
    let (head, answer) = send(
        addr,
        Request::post("/v1/responses"),
        request("demo/echo", 3),
    )
    .await;
    assert_error(
        head.status,
        &answer,
        StatusCode::BAD_REQUEST,
        "resumable_disabled",
    );
    assert!(answer.contains("--resumable"), "{answer}");
    let (status, answer) = get(addr, &format!("/v1/responses/{unknown}")).await;
    assert_error(status, &answer, StatusCode::NOT_FOUND, "response_not_found");
    assert!(answer.contains("--resumable"), "{answer}");
}
