//! `ResumeLayer` with the in-memory store, on tokio's paused clock: a stream resumed after any
//! event is exactly the rest; it runs on with no client; a cancel stops it and its upstream;
//! a producer that dies is reported within the lease; the store stays bounded.

mod common;

use bytes::Bytes;
use common::script::{ScriptBody, Step, data, frames, wait_secs};
use http::{Request, Response};
use http_body_util::BodyExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tower::{ServiceBuilder, ServiceExt};
use tower_llm_stream::resume::{
    MemoryStore, Numbering, Producers, Resumable, ResumeBody, ResumeLayer, StreamState, StreamStore,
};

fn chunk(n: usize) -> String {
    format!(
        "data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"w{n} \"}},\"finish_reason\":null}}]}}\n\n"
    )
}

/// A stream of `n` content chunks, one every `gap` seconds, then `[DONE]`; its drop flag.
fn script(n: usize, gap: f64) -> (Vec<Step>, Arc<AtomicBool>) {
    let mut steps = Vec::new();
    for i in 0..n {
        steps.push(wait_secs(gap));
        steps.push(data(chunk(i)));
    }
    steps.push(data("data: [DONE]\n\n"));
    (steps, Arc::new(AtomicBool::new(false)))
}

/// Starts a resumable stream over `steps` in `store`; the client's body.
async fn start(
    store: &MemoryStore,
    id: &str,
    steps: Vec<Step>,
    dropped: Arc<AtomicBool>,
) -> impl http_body::Body<Data = Bytes, Error = tower_llm_stream::BoxError> {
    start_with(
        ResumeLayer::new(store.clone()),
        Resumable::new(id),
        steps,
        dropped,
    )
    .await
}

/// [`start`] through `layer`, numbered as `resumable` says.
async fn start_with(
    layer: ResumeLayer<MemoryStore>,
    resumable: Resumable,
    steps: Vec<Step>,
    dropped: Arc<AtomicBool>,
) -> impl http_body::Body<Data = Bytes, Error = tower_llm_stream::BoxError> {
    let upstream = tower::service_fn(move |_req: Request<()>| {
        let mut body = ScriptBody::new(steps.clone());
        body.dropped = Some(dropped.clone());
        let response = Response::builder()
            .header("content-type", "text/event-stream")
            .body(body)
            .unwrap();
        std::future::ready(Ok::<_, std::convert::Infallible>(response))
    });
    let service = ServiceBuilder::new().layer(layer).service(upstream);
    let mut request = Request::new(());
    request.extensions_mut().insert(resumable);
    service.oneshot(request).await.unwrap().into_body()
}

/// The frames of a whole stream, without their `id:` lines.
fn without_ids(frames: &[String]) -> Vec<String> {
    frames
        .iter()
        .map(|f| {
            f.split_once('\n')
                .filter(|(first, _)| first.starts_with("id: "))
                .map_or(f.clone(), |(_, rest)| rest.to_owned())
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_stream_resumed_after_any_event_is_exactly_the_rest() {
    let store = MemoryStore::new();
    let (steps, dropped) = script(12, 0.1);
    let whole = frames(start(&store, "s", steps.clone(), dropped).await).await;
    assert_eq!(whole.len(), 13);
    for (i, frame) in whole.iter().enumerate() {
        assert!(frame.starts_with(&format!("id: {}\n", i + 1)), "{frame}");
    }
    for k in 0..=13 {
        let rest = frames(ResumeBody::new(store.clone(), "s", k)).await;
        assert_eq!(rest, whole[k as usize..], "after {k}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_stream_runs_on_without_its_client_and_is_read_live() {
    let store = MemoryStore::new();
    let (steps, dropped) = script(10, 1.0);
    let body = start(&store, "s", steps, dropped.clone()).await;
    // The client reads three events and goes.
    let mut body = Box::pin(body);
    let mut got = Vec::new();
    for _ in 0..3 {
        let frame = body.frame().await.unwrap().unwrap().into_data().unwrap();
        got.push(String::from_utf8_lossy(&frame).into_owned());
    }
    drop(body);
    assert!(!dropped.load(Ordering::SeqCst), "the upstream goes on");
    // Back 2.5 s later: the events it missed, then the rest live.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let rest = frames(ResumeBody::new(store.clone(), "s", 3)).await;
    got.extend(rest);
    assert_eq!(got.len(), 11);
    assert!(got[10].ends_with("data: [DONE]\n\n"));
    assert_eq!(without_ids(&got)[3], chunk(3));
    let read = store.read("s", 0, Duration::ZERO).await.unwrap().unwrap();
    assert_eq!(read.state, StreamState::Finished);
}

#[tokio::test(start_paused = true)]
async fn a_cancel_stops_the_stream_and_its_upstream() {
    let store = MemoryStore::new();
    let (steps, dropped) = script(100, 1.0);
    let body = start(&store, "s", steps, dropped.clone()).await;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert!(store.cancel("s").await.unwrap());
    assert!(!store.cancel("nope").await.unwrap());
    let out = frames(body).await;
    assert!(dropped.load(Ordering::SeqCst), "the upstream was dropped");
    assert!(out.len() < 10, "{}", out.len());
    assert!(out.last().unwrap().contains("stream_cancelled"), "{out:?}");
}

/// A Responses event numbered `n` (its `sequence_number`).
fn responses_event(n: usize) -> String {
    format!(
        "event: response.output_text.delta\ndata: {{\"type\":\"response.output_text.delta\",\"sequence_number\":{n},\"item_id\":\"m\",\"output_index\":0,\"content_index\":0,\"delta\":\"w{n} \"}}\n\n"
    )
}

#[tokio::test(start_paused = true)]
async fn a_responses_stream_is_numbered_by_its_sequence_numbers() {
    let store = MemoryStore::new();
    let mut steps = Vec::new();
    for n in 0..30 {
        steps.push(wait_secs(1.0));
        steps.push(data(responses_event(n)));
    }
    let dropped = Arc::new(AtomicBool::new(false));
    let resumable = Resumable::new("r").numbering(Numbering::SequenceNumbers);
    let layer = ResumeLayer::new(store.clone());
    let body = start_with(layer, resumable, steps, dropped.clone()).await;
    // Read 4 events, then a second reader resumes after sequence_number 3 (event 4).
    let mut body = std::pin::pin!(body);
    let mut first = Vec::new();
    while first.len() < 4 {
        let frame = body.frame().await.unwrap().unwrap().into_data().unwrap();
        first.push(String::from_utf8(frame.to_vec()).unwrap());
    }
    // As the upstream wrote them: no `id:` lines.
    assert_eq!(first, (0..4).map(responses_event).collect::<Vec<_>>());
    let resumed = ResumeBody::new(store.clone(), "r", 4).numbering(Numbering::SequenceNumbers);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(store.cancel("r").await.unwrap());
    let rest = frames(resumed).await;
    let (last, events) = rest.split_last().unwrap();
    assert_eq!(
        events,
        (4..4 + events.len())
            .map(responses_event)
            .collect::<Vec<_>>()
    );
    // The cancel is told as a Responses error event, numbered next.
    let next = 4 + events.len();
    assert!(
        last.starts_with(&format!(
            "event: error\ndata: {{\"type\":\"error\",\"sequence_number\":{next},\"code\":\"stream_cancelled\""
        )),
        "{last}"
    );
    assert!(dropped.load(Ordering::SeqCst), "the upstream was dropped");
}

#[tokio::test(start_paused = true)]
async fn readers_learn_that_a_producer_died() {
    // A producer that stops renewing its lease: created and written by hand, never ended.
    let store = MemoryStore::new();
    store.create("s", Duration::from_secs(600)).await.unwrap();
    store.append("s", 1, Bytes::from(chunk(0))).await.unwrap();
    let started = tokio::time::Instant::now();
    let out = frames(ResumeBody::new(store.clone(), "s", 0)).await;
    assert_eq!(out.len(), 2);
    assert!(out[1].contains("stream_producer_lost"), "{out:?}");
    assert!(
        started.elapsed() <= Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn unknown_streams_and_expired_ones_are_not_found() {
    let store = MemoryStore::new();
    assert!(
        store
            .read("nope", 0, Duration::ZERO)
            .await
            .unwrap()
            .is_none()
    );
    store.create("s", Duration::from_secs(5)).await.unwrap();
    store.end("s", StreamState::Finished).await.unwrap();
    assert!(store.read("s", 0, Duration::ZERO).await.unwrap().is_some());
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(store.read("s", 0, Duration::ZERO).await.unwrap().is_none());
    let out = frames(ResumeBody::new(store, "s", 0)).await;
    assert!(out[0].contains("stream_not_found"), "{out:?}");
}

#[tokio::test(start_paused = true)]
async fn the_store_stays_bounded() {
    // 2 KiB per stream, 6 KiB in all.
    let store = MemoryStore::new()
        .max_stream_bytes(2048)
        .max_total_bytes(6 * 1024);
    let event = Bytes::from(vec![b'x'; 1000]);
    // A stream past its own limit fails.
    store.create("big", Duration::from_secs(600)).await.unwrap();
    store.append("big", 1, event.clone()).await.unwrap();
    store.append("big", 2, event.clone()).await.unwrap();
    assert!(store.append("big", 3, event.clone()).await.is_err());
    store.end("big", StreamState::Failed).await.unwrap();
    // Ended streams make room for new ones, oldest first.
    for i in 0..10 {
        let id = format!("s{i}");
        store.create(&id, Duration::from_secs(600)).await.unwrap();
        store.append(&id, 1, event.clone()).await.unwrap();
        store.append(&id, 2, event.clone()).await.unwrap();
        store.end(&id, StreamState::Finished).await.unwrap();
        assert!(store.bytes() <= 6 * 1024 + 2048, "{}", store.bytes());
    }
    assert!(
        store
            .read("big", 0, Duration::ZERO)
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.read("s0", 0, Duration::ZERO).await.unwrap().is_none());
    assert!(store.read("s9", 0, Duration::ZERO).await.unwrap().is_some());
    // Live streams are never evicted: with the store full of them, a new one is refused.
    let store = MemoryStore::new().max_total_bytes(2000);
    store.create("a", Duration::from_secs(600)).await.unwrap();
    store.append("a", 1, event.clone()).await.unwrap();
    store.append("a", 2, event.clone()).await.unwrap();
    assert!(store.create("b", Duration::from_secs(600)).await.is_err());
}

#[tokio::test(start_paused = true)]
async fn requests_without_the_extension_pass_untouched() {
    let store = MemoryStore::new();
    let (steps, _) = script(3, 0.0);
    let upstream = tower::service_fn(move |_req: Request<()>| {
        let response = Response::builder()
            .header("content-type", "text/event-stream")
            .body(ScriptBody::new(steps.clone()))
            .unwrap();
        std::future::ready(Ok::<_, std::convert::Infallible>(response))
    });
    let service = ServiceBuilder::new()
        .layer(ResumeLayer::new(store.clone()))
        .service(upstream);
    let out = frames(service.oneshot(Request::new(())).await.unwrap().into_body()).await;
    assert_eq!(out[0], chunk(0));
    assert_eq!(store.bytes(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_reader_that_claims_more_than_there_is_waits_for_more() {
    let store = MemoryStore::new();
    store.create("s", Duration::from_secs(600)).await.unwrap();
    for n in 1..=3 {
        store
            .append("s", n, Bytes::from(chunk(n as usize)))
            .await
            .unwrap();
    }
    let read = store
        .read("s", 5, Duration::from_secs(1))
        .await
        .unwrap()
        .unwrap();
    assert!(read.events.is_empty());
    for n in 4..=7 {
        store
            .append("s", n, Bytes::from(chunk(n as usize)))
            .await
            .unwrap();
    }
    let read = store.read("s", 5, Duration::ZERO).await.unwrap().unwrap();
    let numbers: Vec<u64> = read.events.iter().map(|e| e.number).collect();
    assert_eq!(numbers, [6, 7]);
}

#[tokio::test(start_paused = true)]
async fn a_shutdown_can_wait_for_the_producers() {
    let store = MemoryStore::new();
    let producers = Producers::new();
    let (steps, dropped) = script(5, 1.0);
    let layer = ResumeLayer::new(store.clone()).producers(producers.clone());
    // The client goes at once; the producer runs on, counted.
    drop(start_with(layer, Resumable::new("s"), steps, dropped).await);
    assert_eq!(producers.running(), 1);
    let started = tokio::time::Instant::now();
    producers.finished().await;
    assert_eq!(producers.running(), 0);
    // It ran to the stream's end (5 chunks a second apart) and stored it all.
    assert!(
        started.elapsed() >= Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let read = store.read("s", 0, Duration::ZERO).await.unwrap().unwrap();
    assert_eq!((read.events.len(), read.state), (6, StreamState::Finished));
}

#[tokio::test(start_paused = true)]
async fn producers_stop_a_stream_of_theirs_at_once() {
    let store = MemoryStore::new();
    let producers = Producers::new();
    let (steps, dropped) = script(100, 1.0);
    let layer = ResumeLayer::new(store.clone()).producers(producers.clone());
    let body = start_with(layer, Resumable::new("s"), steps, dropped.clone()).await;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert!(!producers.cancel("other"));
    let asked = tokio::time::Instant::now();
    assert!(store.cancel("s").await.unwrap());
    assert!(producers.cancel("s"));
    producers.finished().await;
    // At once: no heartbeat (2 s) waited for, no event after the cancel.
    assert_eq!(asked.elapsed(), Duration::ZERO);
    assert!(dropped.load(Ordering::SeqCst), "the upstream was dropped");
    let out = frames(body).await;
    assert_eq!(out.len(), 4, "3 events, then the cancel: {out:?}");
    assert!(out[3].contains("stream_cancelled"), "{out:?}");
}
