//! Helpers shared by the proxy's resumable-stream suites: scripted upstreams, a proxy with
//! its streams in memory, the requests that open and resume a stream, and the reading of
//! `id:`-numbered events.
#![allow(dead_code)]

use bytes::Bytes;
use http::{HeaderMap, Request};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use llm_proxy::resume::{ResumeConfig, STREAM_ID, Store};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tower_llm_stream::provider::{Provider, ProviderKind, Providers};
use tower_llm_stream_test_support::client::client;
use tower_llm_stream_test_support::proxy::start_proxy;
use tower_llm_stream_test_support::raw::{Upstream, chunk, closed_within, head, upstream};

/// Words of the scripted stream.
pub const WORDS: usize = 16;

/// How long any one step may take.
pub const BOUND: Duration = Duration::from_secs(10);

/// Reads `body` to its end, within [`BOUND`].
pub async fn rest(body: Incoming) -> String {
    rest_within(body, BOUND).await
}

/// Reads `body` to its end, within `within`.
pub async fn rest_within(body: Incoming, within: Duration) -> String {
    let bytes = tokio::time::timeout(within, body.collect())
        .await
        .unwrap_or_else(|_| panic!("the end within {within:?}"))
        .unwrap()
        .to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

pub fn chunk_json(delta: Value, finish: Value) -> String {
    format!(
        "data: {}\n\n",
        json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    )
}

/// Reads `body` until it has at least `k` whole events: what it read.
pub async fn read_events(body: &mut Incoming, k: usize) -> String {
    let mut text = String::new();
    tokio::time::timeout(BOUND, async {
        while events(&text).len() < k {
            let frame = body.frame().await.expect("more events").unwrap();
            if let Ok(data) = frame.into_data() {
                text.push_str(std::str::from_utf8(&data).unwrap());
            }
        }
    })
    .await
    .expect("the events in time");
    text
}

/// The whole events of an SSE text.
pub fn events(text: &str) -> Vec<&str> {
    let whole = text.rfind("\n\n").map_or("", |end| &text[..end]);
    whole.split("\n\n").filter(|e| !e.is_empty()).collect()
}

/// The `id:` of each event, in order (`None` for an event without one).
pub fn ids(text: &str) -> Vec<Option<u64>> {
    events(text)
        .iter()
        .map(|e| {
            e.lines()
                .find_map(|l| l.strip_prefix("id: "))
                .map(|n| n.parse().unwrap())
        })
        .collect()
}

/// The text without its `id:` lines.
pub fn without_ids(text: &str) -> String {
    text.split_inclusive('\n')
        .filter(|l| !l.starts_with("id: "))
        .collect()
}

/// An upstream whose stream is the same bytes every time: a role chunk, [`WORDS`] words `gap`
/// apart, a finish with usage, `[DONE]`.
pub async fn paced(gap: Duration) -> Upstream {
    upstream(move |mut socket| async move {
        let mut out = head(200, "text/event-stream", "connection: close\r\n").into_bytes();
        out.extend(chunk(
            chunk_json(json!({"role": "assistant", "content": ""}), Value::Null).as_bytes(),
        ));
        if socket.write_all(&out).await.is_err() {
            return;
        }
        for i in 0..WORDS {
            tokio::time::sleep(gap).await;
            let word = chunk_json(json!({"content": format!(" w{i}")}), Value::Null);
            if socket.write_all(&chunk(word.as_bytes())).await.is_err() {
                return;
            }
        }
        let mut end = chunk(chunk_json(json!({}), "stop".into()).as_bytes());
        end.extend(chunk(b"data: [DONE]\n\n"));
        end.extend(b"0\r\n\r\n");
        let _ = socket.write_all(&end).await;
    })
    .await
}

/// An upstream that answers the SSE blocks `events`, then nothing until the proxy lets go of
/// it: the upstream, and when it saw its connection closed (for [`assert_closed_soon_after`]).
pub async fn stalled(events: Vec<String>) -> (Upstream, Arc<Mutex<Option<Instant>>>) {
    let closed_at: Arc<Mutex<Option<Instant>>> = Arc::default();
    let seen = closed_at.clone();
    let upstream = upstream(move |mut socket| {
        let (seen, events) = (seen.clone(), events.clone());
        async move {
            let mut out = head(200, "text/event-stream", "").into_bytes();
            for event in &events {
                out.extend(chunk(event.as_bytes()));
            }
            socket.write_all(&out).await.unwrap();
            if closed_within(&mut socket, Duration::from_secs(30)).await {
                *seen.lock().unwrap() = Some(Instant::now());
            }
        }
    })
    .await;
    (upstream, closed_at)
}

/// The proxy with `--resumable` (unless `resumable` is false), its streams in memory, and
/// `providers` besides the demo: its address and its store.
pub async fn proxy(providers: Providers, resumable: bool) -> (SocketAddr, Store) {
    let resume = ResumeConfig::memory(Duration::from_secs(60));
    let store = resume.store.clone();
    let config = llm_proxy::Config {
        providers,
        resume: resumable.then_some(resume),
        ..llm_proxy::Config::default()
    };
    (start_proxy(config).await, store)
}

/// Posts `body` to `path`, with `x-resumable: 1` when `resumable`: the answer's head and body
/// as they come.
pub async fn open(
    addr: SocketAddr,
    path: &str,
    body: String,
    resumable: bool,
) -> http::Response<Incoming> {
    let mut request =
        Request::post(format!("http://{addr}{path}")).header("content-type", "application/json");
    if resumable {
        request = request.header("x-resumable", "1");
    }
    let request = request.body(Full::new(Bytes::from(body))).unwrap();
    tokio::time::timeout(BOUND, client().request(request))
        .await
        .expect("an answer in time")
        .unwrap()
}

/// Opens a resumable stream of `body` at `path` and reads at least `k` whole events of it,
/// then the client goes away: the stream's id and what the client had (whole events, asserted
/// numbered from 1).
pub async fn leave_after(addr: SocketAddr, path: &str, body: String, k: usize) -> (String, String) {
    let response = open(addr, path, body, true).await;
    assert_eq!(response.status(), http::StatusCode::OK);
    let id = stream_id(response.headers());
    let mut body = response.into_body();
    let first = read_events(&mut body, k).await;
    drop(body);
    let had = ids(&first);
    let expected: Vec<Option<u64>> = (1..=had.len() as u64).map(Some).collect();
    assert_eq!(had, expected, "{first}");
    (id, first)
}

/// `GET /v1/streams/{id}` with `headers`.
pub async fn resume(
    addr: SocketAddr,
    id: &str,
    headers: &[(&str, &str)],
) -> http::Response<Incoming> {
    let mut request = Request::get(format!("http://{addr}/v1/streams/{id}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Full::new(Bytes::new())).unwrap();
    tokio::time::timeout(BOUND, client().request(request))
        .await
        .expect("an answer in time")
        .unwrap()
}

/// The stream id an answer names (`x-stream-id`), asserted 32 hex digits.
pub fn stream_id(headers: &HeaderMap) -> String {
    let id = headers
        .get(&STREAM_ID)
        .unwrap_or_else(|| panic!("no x-stream-id: {headers:?}"))
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(id.len(), 32, "{id}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    id
}

/// Asserts that what a client had of a [`paced`] stream, `first`, and what it resumed,
/// `second`, are together `whole` (the same stream, not resumable) with each event numbered
/// once, from 1.
pub fn assert_exactly_the_rest(first: &str, second: &str, whole: &str) {
    let both = format!("{first}{second}");
    let expected: Vec<Option<u64>> = (1..=(WORDS as u64 + 3)).map(Some).collect();
    assert_eq!(ids(&both), expected, "no gap, no duplicate: {both}");
    let had = ids(first).len();
    assert_eq!(without_ids(&both), whole, "resumed after event {had}");
}

/// The providers of a test proxy: `s`, OpenAI-compatible, at `upstream` when given.
pub fn providers_at(upstream: Option<&Upstream>) -> Providers {
    let mut providers = Providers::new();
    if let Some(upstream) = upstream {
        providers.insert(
            Provider::new(
                "s",
                ProviderKind::OpenAiCompatible,
                &format!("http://{}/v1", upstream.addr()),
            )
            .unwrap(),
        );
    }
    providers
}

/// Waits until an upstream notes in `closed` when the proxy closed its connection (within
/// [`BOUND`]); asserts that was less than 1 s after `since`, the cancel: the producer runs in
/// the process that was asked, which stops it at once (not at its next heartbeat, 2 s).
pub async fn assert_closed_soon_after(closed: &Arc<Mutex<Option<Instant>>>, since: Instant) {
    let started = Instant::now();
    let at = loop {
        if let Some(at) = *closed.lock().unwrap() {
            break at;
        }
        assert!(started.elapsed() < BOUND, "the upstream was never let go");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let after = at.saturating_duration_since(since);
    assert!(
        after < Duration::from_secs(4),
        "closed {after:?} after the cancel"
    );
}
