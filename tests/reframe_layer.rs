//! `SseReframeLayer` on scripted upstream bodies and on every fixture stream.

mod common;

use bytes::Bytes;
use common::script::{Step, data, frames, sse_upstream, upstream};
use http::{HeaderMap, Request};
use proptest::prelude::*;
use tower::{ServiceBuilder, ServiceExt};
use tower_llm_stream::dialect::Passthrough;
use tower_llm_stream::reframe::SseReframeLayer;
use tower_llm_stream::sse::Decoder;

async fn reframe(steps: Vec<Step>) -> Vec<String> {
    reframe_with(SseReframeLayer::new(), steps).await
}

async fn reframe_with(layer: SseReframeLayer, steps: Vec<Step>) -> Vec<String> {
    let service = ServiceBuilder::new()
        .layer(layer)
        .service(sse_upstream(steps));
    let response = service.oneshot(Request::new(())).await.unwrap();
    frames(response.into_body()).await
}

fn bytewise(text: &str) -> Vec<Step> {
    text.as_bytes().iter().map(|b| data(vec![*b])).collect()
}

#[tokio::test]
async fn one_event_per_frame_from_one_byte_chunks() {
    let out = reframe(bytewise(
        "data: {\"a\":1}\n\n: ping\n\nevent: x\ndata: 2\n\ndata: [DONE]\n\n",
    ))
    .await;
    assert_eq!(
        out,
        [
            "data: {\"a\":1}\n\n",
            ": ping\n\n",
            "event: x\ndata: 2\n\n",
            "data: [DONE]\n\n"
        ]
    );
}

#[tokio::test]
async fn many_events_in_one_chunk_are_split() {
    let out = reframe(vec![data("data: 1\n\ndata: 2\n\ndata: [DONE]\n\n")]).await;
    assert_eq!(out, ["data: 1\n\n", "data: 2\n\n", "data: [DONE]\n\n"]);
}

#[tokio::test]
async fn crlf_and_bom_are_normalized() {
    let out = reframe(vec![data("\u{FEFF}data: 1\r\n\r\ndata: [DONE]\r\r")]).await;
    assert_eq!(out, ["data: 1\n\n", "data: [DONE]\n\n"]);
}

#[tokio::test]
async fn invalid_utf8_is_repaired() {
    let out = reframe(vec![data(&b"data: \xFF\n\ndata: [DONE]\n\n"[..])]).await;
    assert_eq!(out, ["data: \u{FFFD}\n\n", "data: [DONE]\n\n"]);
}

#[tokio::test]
async fn streaming_headers_set_and_content_length_dropped() {
    let service = ServiceBuilder::new()
        .layer(SseReframeLayer::new())
        .service(sse_upstream(vec![data("data: [DONE]\n\n")]));
    let response = service.oneshot(Request::new(())).await.unwrap();
    assert!(response.headers().get("content-length").is_none());
    assert_eq!(response.headers()["cache-control"], "no-cache");
    assert_eq!(response.headers()["x-accel-buffering"], "no");
}

#[tokio::test]
async fn other_content_types_pass_untouched() {
    let body = "data: not sse\r\n\r\n{\"json\":true}";
    let service = ServiceBuilder::new()
        .layer(SseReframeLayer::new())
        .service(upstream(
            "application/json",
            vec![data(&body[..5]), data(&body[5..])],
        ));
    let response = service.oneshot(Request::new(())).await.unwrap();
    assert_eq!(response.headers()["content-length"], "12345");
    assert!(response.headers().get("cache-control").is_none());
    assert_eq!(frames(response.into_body()).await, [&body[..5], &body[5..]]);
}

#[tokio::test]
async fn trailers_are_kept() {
    let mut trailers = HeaderMap::new();
    trailers.insert("x-usage", "1".parse().unwrap());
    let out = reframe(vec![
        data("data: [DONE]\n"),
        data("\n"),
        Step::Trailers(trailers),
    ])
    .await;
    assert_eq!(out, ["data: [DONE]\n\n", "<trailers>"]);
}

#[tokio::test]
async fn events_are_yielded_without_waiting_for_more_input() {
    let service = ServiceBuilder::new()
        .layer(SseReframeLayer::new())
        .service(sse_upstream(vec![data("data: 1\n\ndata: 2"), Step::Stall]));
    let response = service.oneshot(Request::new(())).await.unwrap();
    let mut body = std::pin::pin!(response.into_body());
    use http_body_util::BodyExt;
    let first = tokio::time::timeout(std::time::Duration::from_secs(5), body.frame()).await;
    let frame = first
        .expect("the complete event comes out at once")
        .unwrap()
        .unwrap();
    assert_eq!(frame.into_data().unwrap(), "data: 1\n\n");
    // The partial second event is held.
    let second = tokio::time::timeout(std::time::Duration::from_millis(50), body.frame()).await;
    assert!(second.is_err());
}

#[tokio::test]
async fn a_crlf_event_is_yielded_at_its_cr() {
    let service = ServiceBuilder::new()
        .layer(SseReframeLayer::new())
        .service(sse_upstream(vec![data("data: 1\r\n\r"), Step::Stall]));
    let response = service.oneshot(Request::new(())).await.unwrap();
    let mut body = std::pin::pin!(response.into_body());
    use http_body_util::BodyExt;
    let frame = tokio::time::timeout(std::time::Duration::from_secs(5), body.frame()).await;
    assert_eq!(
        frame.unwrap().unwrap().unwrap().into_data().unwrap(),
        "data: 1\n\n"
    );
}

#[tokio::test]
async fn missing_terminator_is_truncation() {
    let out = reframe(vec![data("data: 1\n\n")]).await;
    assert_eq!(out[0], "data: 1\n\n");
    assert_eq!(
        out[1],
        "ERR: the upstream stream was cut off: the upstream ended without [DONE] or a terminal event"
    );
    assert_eq!(out.len(), 2);
}

#[tokio::test]
async fn an_unterminated_done_is_accepted() {
    let out = reframe(vec![data("data: 1\n\ndata: [DONE]")]).await;
    assert_eq!(out, ["data: 1\n\n", "data: [DONE]\n\n"]);
}

#[tokio::test]
async fn ending_mid_event_is_truncation() {
    let out = reframe(vec![data("data: 1\n\ndata: [DO")]).await;
    assert_eq!(
        out,
        [
            "data: 1\n\n",
            "ERR: the upstream stream was cut off: the upstream ended in the middle of an event"
        ]
    );
}

#[tokio::test]
async fn any_end_dialect_accepts_a_clean_end() {
    let out = reframe_with(
        SseReframeLayer::new().dialect(Passthrough::any_end()),
        vec![data("data: 1\n\n")],
    )
    .await;
    assert_eq!(out, ["data: 1\n\n"]);
}

#[tokio::test]
async fn responses_terminal_event_ends_cleanly() {
    let out = reframe(vec![data(
        "event: response.completed\ndata: {\"type\":\"response.completed\"}\n\n",
    )])
    .await;
    assert_eq!(out.len(), 1);
    let out = reframe(vec![data(
        "data: {\"type\":\"response.incomplete\",\"x\":1}\n\n",
    )])
    .await;
    assert_eq!(out.len(), 1);
}

#[tokio::test]
async fn oversized_event_is_an_error_after_earlier_events() {
    let big = format!("data: {}\n\n", "x".repeat(100));
    let layer = SseReframeLayer::new().max_event_size(50);
    let out = reframe_with(
        layer,
        vec![data("data: 1\n\n"), data(big), data("data: [DONE]\n\n")],
    )
    .await;
    assert_eq!(
        out,
        [
            "data: 1\n\n",
            "ERR: an upstream event exceeded the 50-byte limit"
        ]
    );
}

#[tokio::test]
async fn upstream_error_after_events() {
    let out = reframe(vec![
        data("data: 1\n\nda"),
        Step::Fail("connection reset by peer"),
    ])
    .await;
    assert_eq!(
        out,
        [
            "data: 1\n\n",
            "ERR: the upstream connection failed: connection reset by peer"
        ]
    );
}

/// Every SSE fixture: the frames out are exactly the blocks in, one per frame, canonical.
fn check_fixture(path: &str, cuts: &[usize]) {
    let raw = common::fixture(path);
    let steps: Vec<Step> = common::split_at(&raw, cuts)
        .into_iter()
        .map(Step::Data)
        .collect();
    let out = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
        .block_on(reframe_with(
            SseReframeLayer::new().dialect(Passthrough::any_end()),
            steps,
        ));
    let mut expected = Vec::new();
    for block in common::blocks(&mut Decoder::new(), vec![Bytes::from(raw.clone())]) {
        let block = block.unwrap();
        let done = block.event().is_some_and(|e| e.data() == "[DONE]");
        if block.is_terminated() || done {
            expected.push(String::from_utf8(block.canonical().to_vec()).unwrap());
        } else {
            // Stored without the final blank line, and not the terminator: cut mid-event.
            expected.push("ERR: the upstream stream was cut off: the upstream ended in the middle of an event".to_owned());
        }
    }
    assert!(!expected.is_empty(), "{path}");
    assert_eq!(out, expected, "{path}");
    for frame in out.iter().filter(|f| !f.starts_with("ERR:")) {
        let blocks = common::blocks(&mut Decoder::new(), vec![Bytes::from(frame.clone())]);
        assert_eq!(blocks.len(), 1, "{path}: one block per frame");
        assert!(!frame.contains('\r'), "{path}: LF only");
    }
    let events_in = common::events(vec![Bytes::from(raw)]);
    let frames_out: Vec<&str> = out
        .iter()
        .filter(|f| !f.starts_with("ERR:"))
        .map(String::as_str)
        .collect();
    let mut events_out = common::events(vec![Bytes::from(frames_out.concat())]);
    // A final `data: [DONE]` stored without its blank line is accepted (and completed).
    if events_out.last().is_some_and(|e| e.data == "[DONE]")
        && events_in.last().is_none_or(|e| e.data != "[DONE]")
    {
        events_out.pop();
    }
    assert_eq!(events_in, events_out, "{path}: same events");
}

fn sse_fixtures() -> Vec<String> {
    let root = format!("{}/tests/fixtures", env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for dir in std::fs::read_dir(&root).unwrap() {
        let dir = dir.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&dir).unwrap() {
            let file = file.unwrap().path();
            if file.extension().is_some_and(|e| e == "sse") {
                out.push(
                    file.strip_prefix(&root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    out.sort();
    assert!(out.len() >= 25, "fixtures found: {out:?}");
    out
}

#[test]
fn every_fixture_passes_through_whole_and_bytewise() {
    for path in sse_fixtures() {
        check_fixture(&path, &[]);
        let len = common::fixture(&path).len();
        check_fixture(&path, &(1..len).collect::<Vec<_>>());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: common::cases(64), ..ProptestConfig::default() })]
    #[test]
    fn every_fixture_passes_through_any_chunking(cuts in proptest::collection::vec(0usize..70_000, 0..200)) {
        for path in sse_fixtures() {
            check_fixture(&path, &cuts);
        }
    }
}

#[tokio::test]
async fn a_compressed_event_stream_is_refused_by_name_and_its_encoding_dropped() {
    let gzipped = tower::service_fn(|_req: Request<()>| async {
        let response = http::Response::builder()
            .header("content-type", "text/event-stream")
            .header("content-encoding", "gzip")
            .body(common::script::ScriptBody::new([data(
                &b"\x1f\x8b\x08\x00binary"[..],
            )]))
            .unwrap();
        Ok::<_, std::convert::Infallible>(response)
    });
    let service = ServiceBuilder::new()
        .layer(tower_llm_stream::ErrorEventLayer::new())
        .layer(SseReframeLayer::new())
        .service(gzipped);
    let response = service.oneshot(Request::new(())).await.unwrap();
    assert!(response.headers().get("content-encoding").is_none());
    let out = frames(response.into_body()).await;
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(out[0].contains("\"code\":\"malformed_event\""), "{out:?}");
    assert!(out[0].contains("gzip-encoded"), "{out:?}");
    assert!(out[0].contains("tower_http::decompression"), "{out:?}");
}
