//! `ErrorEventLayer` alone and with the other layers: error events, clean ends, normalized
//! error responses, and the per-stream span.

mod common;

use common::script::{ScriptBody, Step, data, frames, sse_upstream, upstream};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use std::convert::Infallible;
use tower::{ServiceBuilder, ServiceExt};
use tower_llm_stream::error_event::ErrorEventLayer;
use tower_llm_stream::reframe::SseReframeLayer;
use tower_llm_stream::timeout::StreamTimeoutLayer;

/// The full stack in the documented order.
async fn through_stack(steps: Vec<Step>) -> Vec<String> {
    let service = ServiceBuilder::new()
        .layer(ErrorEventLayer::new())
        .layer(StreamTimeoutLayer::new())
        .layer(SseReframeLayer::new())
        .service(sse_upstream(steps));
    let response = service.oneshot(Request::new(())).await.unwrap();
    frames(response.into_body()).await
}

fn error_of(frame: &str) -> serde_json::Value {
    let data = frame
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .unwrap();
    serde_json::from_str(data).unwrap()
}

#[tokio::test(start_paused = true)]
async fn idle_timeout_becomes_an_error_event_and_a_clean_end() {
    let out = through_stack(vec![data("data: {\"a\":1}\n\n"), Step::Stall]).await;
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(out[0], "data: {\"a\":1}\n\n");
    assert_eq!(
        out[1],
        "data: {\"error\":{\"type\":\"timeout_error\",\"code\":\"stream_idle_timeout\",\"message\":\"no event from the upstream for 30s\"}}\n\n"
    );
}

#[tokio::test]
async fn truncation_reset_and_oversize_codes() {
    let out = through_stack(vec![data("data: 1\n\n")]).await;
    assert_eq!(error_of(&out[1])["error"]["code"], "stream_truncated");
    let out = through_stack(vec![data("data: 1\n\ndata: [DO")]).await;
    assert_eq!(error_of(&out[1])["error"]["code"], "stream_truncated");
    let out = through_stack(vec![
        data("data: 1\n\n"),
        Step::Fail("connection reset by peer"),
    ])
    .await;
    let err = error_of(&out[1]);
    assert_eq!(err["error"]["code"], "upstream_body_error");
    assert_eq!(
        err["error"]["message"],
        "the upstream connection failed: connection reset by peer"
    );
    assert!(
        out.iter().all(|f| !f.starts_with("ERR")),
        "never an Err after the event: {out:?}"
    );

    let service = ServiceBuilder::new()
        .layer(ErrorEventLayer::new())
        .layer(SseReframeLayer::new().max_event_size(10))
        .service(sse_upstream(vec![data(
            "data: 0123456789\n\ndata: [DONE]\n\n",
        )]));
    let out = frames(service.oneshot(Request::new(())).await.unwrap().into_body()).await;
    assert_eq!(out.len(), 1);
    assert_eq!(error_of(&out[0])["error"]["code"], "event_too_large");
}

#[tokio::test]
async fn complete_streams_are_untouched() {
    let out = through_stack(vec![data("data: 1\n\ndata: [DONE]\n\n")]).await;
    assert_eq!(out, ["data: 1\n\n", "data: [DONE]\n\n"]);
}

#[tokio::test]
async fn responses_streams_get_a_typed_error_with_the_next_sequence_number() {
    let steps = vec![
        data(
            "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0}\n\n",
        ),
        data(
            "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":1,\"delta\":\"Hi\"}\n\n",
        ),
        Step::Fail("reset"),
    ];
    let out = through_stack(steps).await;
    assert_eq!(out.len(), 3);
    assert!(out[2].starts_with("event: error\ndata: "), "{}", out[2]);
    let err = error_of(&out[2]);
    assert_eq!(err["type"], "error");
    assert_eq!(err["sequence_number"], 2);
    assert_eq!(err["code"], "upstream_body_error");
    assert_eq!(err["error"]["code"], "upstream_body_error");
}

#[tokio::test]
async fn an_upstream_error_event_ends_the_stream() {
    let steps = vec![
        data("data: {\"a\":1}\n\n"),
        data(
            "event: error\ndata: {\"error\":{\"message\":\"tool_use_failed\",\"type\":\"invalid_request_error\",\"code\":\"tool_use_failed\"}}\n\n",
        ),
        data("data: {\"after\":true}\n\ndata: [DONE]\n\n"),
    ];
    let out = through_stack(steps).await;
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(out[1].starts_with("event: error\n"));
}

#[tokio::test]
async fn upstream_error_responses_keep_their_status_and_are_normalized() {
    let body = r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
    let up = tower::service_fn(move |_req: Request<()>| async move {
        let response = Response::builder()
            .status(529)
            .header("content-type", "application/json")
            .header("content-length", body.len())
            .body(ScriptBody::new([data(&body[..10]), data(&body[10..])]))
            .unwrap();
        Ok::<_, Infallible>(response)
    });
    let service = ServiceBuilder::new()
        .layer(ErrorEventLayer::new())
        .layer(SseReframeLayer::new())
        .service(up);
    let response = service.oneshot(Request::new(())).await.unwrap();
    assert_eq!(response.status().as_u16(), 529);
    assert!(response.headers().get("content-length").is_none());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        body,
        r#"{"error":{"type":"overloaded_error","code":"overloaded_error","message":"Overloaded"}}"#
    );
}

#[tokio::test]
async fn service_errors_become_502() {
    let failing = tower::service_fn(|_req: Request<()>| async {
        Err::<Response<ScriptBody>, _>(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "connection refused",
        ))
    });
    let service = ServiceBuilder::new()
        .layer(ErrorEventLayer::new())
        .service(failing);
    let response = service.oneshot(Request::new(())).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["error"]["code"], "upstream_unavailable");
    assert_eq!(
        json["error"]["message"],
        "the upstream could not be reached: connection refused"
    );
}

#[tokio::test]
async fn non_streaming_success_passes_through() {
    let service = ServiceBuilder::new()
        .layer(ErrorEventLayer::new())
        .service(upstream("application/json", vec![data("{\"ok\":true}")]));
    let response = service.oneshot(Request::new(())).await.unwrap();
    assert_eq!(response.headers()["content-length"], "12345");
    assert_eq!(frames(response.into_body()).await, ["{\"ok\":true}"]);
}

#[tokio::test(start_paused = true)]
async fn head_timeout_504_passes_through_normalized() {
    let slow = tower::service_fn(|_req: Request<()>| async {
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
        Ok::<_, Infallible>(Response::new(ScriptBody::new([])))
    });
    let service = ServiceBuilder::new()
        .layer(ErrorEventLayer::new())
        .layer(StreamTimeoutLayer::new())
        .service(slow);
    let response = service.oneshot(Request::new(())).await.unwrap();
    assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["error"]["code"], "upstream_timeout");
}

#[tokio::test]
async fn responses_error_then_failed_keeps_the_terminal_event() {
    let raw = common::fixture("openai/responses_error_failed.sse");
    let steps = vec![
        Step::Data(bytes::Bytes::from(raw)),
        data("event: response.output_text.delta\ndata: {}\n\n"),
    ];
    let out = through_stack(steps).await;
    let types: Vec<&str> = out.iter().map(|f| f.lines().next().unwrap()).collect();
    assert_eq!(
        types,
        [
            "event: response.created",
            "event: response.in_progress",
            "event: error",
            "event: response.failed"
        ]
    );
}
