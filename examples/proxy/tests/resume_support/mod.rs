//! Helpers shared by the proxy's resumable-stream suites: a scripted chat upstream and the
//! reading of `id:`-numbered events.
#![allow(dead_code)]

use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tower_llm_stream::provider::{Provider, ProviderKind, Providers};
use tower_llm_stream_test_support::raw::{Upstream, chunk, head, upstream};

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
