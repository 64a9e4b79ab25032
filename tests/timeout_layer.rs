//! `StreamTimeoutLayer` on tokio's paused clock: the 30 s defaults, idle resets, the first
//! event, the total deadline, per-request overrides and keep-alives.

mod common;

use common::script::{ScriptBody, Step, data, sse_upstream, wait_secs};
use http::{HeaderName, Request, Response, StatusCode};
use http_body_util::BodyExt;
use std::convert::Infallible;
use std::time::Duration;
use tokio::time::Instant;
use tower::{ServiceBuilder, ServiceExt};
use tower_llm_stream::StreamError;
use tower_llm_stream::timeout::{Shutdown, StreamTimeoutLayer, StreamTimeouts};

/// Frames with the paused-clock second at which each arrived.
async fn timed_frames(
    layer: StreamTimeoutLayer,
    request: Request<()>,
    steps: Vec<Step>,
) -> (StatusCode, Vec<(f64, String)>) {
    let start = Instant::now();
    let service = ServiceBuilder::new()
        .layer(layer)
        .service(sse_upstream(steps));
    let response = service.oneshot(request).await.unwrap();
    let status = response.status();
    let mut body = std::pin::pin!(response.into_body());
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let at = (start.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
        match frame {
            Ok(frame) => out.push((
                at,
                String::from_utf8_lossy(&frame.into_data().unwrap()).into_owned(),
            )),
            Err(err) => {
                let code = err
                    .downcast_ref::<StreamError>()
                    .map_or("?", |e| e.code())
                    .to_owned();
                out.push((at, format!("ERR {code}: {err}")));
            }
        }
    }
    (status, out)
}

fn ev(n: u32) -> Step {
    data(format!("data: {n}\n\n"))
}

#[tokio::test(start_paused = true)]
async fn idle_timeout_defaults_to_30s_after_the_last_event() {
    let steps = vec![ev(1), wait_secs(10.0), ev(2), Step::Stall];
    let (_, out) = timed_frames(StreamTimeoutLayer::new(), Request::new(()), steps).await;
    assert_eq!(out[0], (0.0, "data: 1\n\n".into()));
    assert_eq!(out[1], (10.0, "data: 2\n\n".into()));
    assert_eq!(
        out[2],
        (
            40.0,
            "ERR stream_idle_timeout: no event from the upstream for 30s".into()
        )
    );
    assert_eq!(out.len(), 3, "nothing after the error");
}

#[tokio::test(start_paused = true)]
async fn the_first_event_counts_as_a_gap() {
    let (_, out) = timed_frames(
        StreamTimeoutLayer::new(),
        Request::new(()),
        vec![Step::Stall],
    )
    .await;
    assert_eq!(
        out,
        [(
            30.0,
            "ERR stream_idle_timeout: no event from the upstream for 30s".into()
        )]
    );
}

#[tokio::test(start_paused = true)]
async fn events_every_29s_never_time_out() {
    let mut steps = Vec::new();
    for n in 0..20 {
        steps.push(wait_secs(29.0));
        steps.push(ev(n));
    }
    steps.push(data("data: [DONE]\n\n"));
    let (_, out) = timed_frames(StreamTimeoutLayer::new(), Request::new(()), steps).await;
    assert_eq!(out.len(), 21);
    assert!(out.iter().all(|(_, f)| !f.starts_with("ERR")));
    assert_eq!(out[20].0, 580.0);
}

#[tokio::test(start_paused = true)]
async fn upstream_comments_are_not_activity() {
    let mut steps = vec![ev(1)];
    for _ in 0..10 {
        steps.push(wait_secs(5.0));
        steps.push(data(": OPENROUTER PROCESSING\n\n"));
    }
    steps.push(Step::Stall);
    let (_, out) = timed_frames(StreamTimeoutLayer::new(), Request::new(()), steps).await;
    let last = out.last().unwrap();
    assert_eq!(
        last,
        &(
            30.0,
            "ERR stream_idle_timeout: no event from the upstream for 30s".into()
        )
    );
    assert_eq!(
        out.len(),
        1 + 6 + 1,
        "the comments before the timeout are forwarded"
    );
}

#[tokio::test(start_paused = true)]
async fn total_deadline() {
    let mut steps = Vec::new();
    for n in 0..100 {
        steps.push(wait_secs(1.0));
        steps.push(ev(n));
    }
    let layer = StreamTimeoutLayer::new().total(Duration::from_secs(10));
    let (_, out) = timed_frames(layer, Request::new(()), steps).await;
    assert_eq!(
        out.last().unwrap(),
        &(
            10.0,
            "ERR stream_deadline: the stream exceeded its 10s deadline".into()
        )
    );
}

#[tokio::test(start_paused = true)]
async fn head_timeout_is_a_504_with_a_json_error() {
    let slow = tower::service_fn(|_req: Request<()>| async {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok::<_, Infallible>(Response::new(ScriptBody::new([])))
    });
    let start = Instant::now();
    let service = ServiceBuilder::new()
        .layer(StreamTimeoutLayer::new())
        .service(slow);
    let response = service.oneshot(Request::new(())).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(30));
    assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["error"]["type"], "timeout_error");
    assert_eq!(json["error"]["code"], "upstream_timeout");
    assert_eq!(
        json["error"]["message"],
        "the upstream sent no response head within 30s"
    );
}

#[tokio::test(start_paused = true)]
async fn header_override_with_decimals_and_clamp() {
    let layer = || {
        StreamTimeoutLayer::new().override_header(
            HeaderName::from_static("x-request-timeout"),
            Duration::from_secs(120),
        )
    };
    let req = |v: &str| {
        Request::builder()
            .header("x-request-timeout", v)
            .body(())
            .unwrap()
    };

    let (_, out) = timed_frames(layer(), req("2.5"), vec![ev(1), Step::Stall]).await;
    assert_eq!(
        out[1],
        (
            2.5,
            "ERR stream_idle_timeout: no event from the upstream for 2.5s".into()
        )
    );

    let (_, out) = timed_frames(layer(), req("100000"), vec![Step::Stall]).await;
    assert_eq!(out[0].0, 120.0, "clamped to the maximum");

    // Without the header, the default.
    let (_, out) = timed_frames(layer(), Request::new(()), vec![Step::Stall]).await;
    assert_eq!(out[0].0, 30.0);
}

#[tokio::test(start_paused = true)]
async fn header_is_ignored_unless_opted_in() {
    let req = Request::builder()
        .header("x-request-timeout", "1")
        .body(())
        .unwrap();
    let (_, out) = timed_frames(StreamTimeoutLayer::new(), req, vec![Step::Stall]).await;
    assert_eq!(out[0].0, 30.0);
}

#[tokio::test(start_paused = true)]
async fn invalid_header_is_a_400() {
    for bad in ["abc", "0", "-5", "1e9", ""] {
        let layer = StreamTimeoutLayer::new().override_header(
            HeaderName::from_static("x-request-timeout"),
            Duration::from_secs(120),
        );
        let req = Request::builder()
            .header("x-request-timeout", bad)
            .body(())
            .unwrap();
        let service = ServiceBuilder::new()
            .layer(layer)
            .service(sse_upstream(vec![ev(1)]));
        let response = service.oneshot(req).await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad:?}");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["error"]["code"], "invalid_request_timeout");
        assert!(
            json["error"]["message"]
                .as_str()
                .unwrap()
                .contains("x-request-timeout")
        );
    }
}

#[tokio::test(start_paused = true)]
async fn request_extension_overrides_everything() {
    let layer = StreamTimeoutLayer::new().override_header(
        HeaderName::from_static("x-request-timeout"),
        Duration::from_secs(120),
    );
    let mut req = Request::builder()
        .header("x-request-timeout", "50")
        .body(())
        .unwrap();
    req.extensions_mut().insert(StreamTimeouts {
        head: None,
        idle: Some(Duration::from_secs(5)),
        total: None,
    });
    let (_, out) = timed_frames(layer, req, vec![Step::Stall]).await;
    assert_eq!(out[0].0, 5.0);

    // No limits at all: a stall an hour long is waited out.
    let mut req = Request::new(());
    req.extensions_mut().insert(StreamTimeouts {
        head: None,
        idle: None,
        total: None,
    });
    let (_, out) = timed_frames(
        StreamTimeoutLayer::new(),
        req,
        vec![wait_secs(3600.0), ev(1)],
    )
    .await;
    assert_eq!(out, [(3600.0, "data: 1\n\n".into())]);
}

#[tokio::test(start_paused = true)]
async fn keep_alives_are_sent_but_do_not_count_as_activity() {
    let layer = StreamTimeoutLayer::new().keep_alive(Duration::from_secs(10));
    let (_, out) = timed_frames(
        layer,
        Request::new(()),
        vec![ev(1), wait_secs(25.0), ev(2), Step::Stall],
    )
    .await;
    let expected: Vec<(f64, String)> = vec![
        (0.0, "data: 1\n\n".into()),
        (10.0, ": keep-alive\n\n".into()),
        (20.0, ": keep-alive\n\n".into()),
        (25.0, "data: 2\n\n".into()),
        (35.0, ": keep-alive\n\n".into()),
        (45.0, ": keep-alive\n\n".into()),
        (
            55.0,
            "ERR stream_idle_timeout: no event from the upstream for 30s".into(),
        ),
    ];
    assert_eq!(out, expected);
}

#[tokio::test(start_paused = true)]
async fn upstream_errors_pass_through() {
    let (_, out) = timed_frames(
        StreamTimeoutLayer::new(),
        Request::new(()),
        vec![ev(1), Step::Fail("reset")],
    )
    .await;
    assert_eq!(out[1].1, "ERR ?: reset");
}

/// A JSON upstream that pauses for longer than the idle timeout and the keep-alive interval.
fn slow_json_upstream() -> impl tower::Service<
    Request<()>,
    Response = Response<common::script::ScriptBody>,
    Error = Infallible,
    Future = std::future::Ready<Result<Response<common::script::ScriptBody>, Infallible>>,
> + Clone {
    common::script::upstream(
        "application/json",
        vec![
            data("{\"id\":\"chatcmpl-1\","),
            wait_secs(45.0),
            data("\"choices\":[]}"),
        ],
    )
}

#[tokio::test(start_paused = true)]
async fn a_slow_json_body_under_keep_alive_arrives_byte_identical() {
    let service = ServiceBuilder::new()
        .layer(StreamTimeoutLayer::new().keep_alive(Duration::from_secs(10)))
        .service(slow_json_upstream());
    let response = service.oneshot(Request::new(())).await.unwrap();
    // Not an event stream: its length stays, no idle timer, no keep-alive comment.
    assert_eq!(response.headers()["content-length"], "12345");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"{\"id\":\"chatcmpl-1\",\"choices\":[]}");
}

#[tokio::test(start_paused = true)]
async fn an_event_stream_under_keep_alive_loses_its_length() {
    let service = ServiceBuilder::new()
        .layer(StreamTimeoutLayer::new().keep_alive(Duration::from_secs(10)))
        .service(sse_upstream(vec![ev(1)]));
    let response = service.oneshot(Request::new(())).await.unwrap();
    assert!(response.headers().get("content-length").is_none());
    let hint = http_body::Body::size_hint(response.body());
    assert_eq!((hint.exact(), hint.upper()), (None, None));
    // Without keep-alives nothing is added, and the length is left alone.
    let service = ServiceBuilder::new()
        .layer(StreamTimeoutLayer::new())
        .service(sse_upstream(vec![ev(1)]));
    let response = service.oneshot(Request::new(())).await.unwrap();
    assert_eq!(response.headers()["content-length"], "12345");
}

#[tokio::test(start_paused = true)]
async fn a_slow_json_body_still_meets_the_total_deadline() {
    let service = ServiceBuilder::new()
        .layer(StreamTimeoutLayer::new().total(Duration::from_secs(40)))
        .service(slow_json_upstream());
    let response = service.oneshot(Request::new(())).await.unwrap();
    let frames = common::script::frames(response.into_body()).await;
    assert_eq!(
        frames,
        [
            "{\"id\":\"chatcmpl-1\",".to_owned(),
            "ERR: the stream exceeded its 40s deadline".to_owned()
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_triggered_shutdown_ends_open_streams_and_waiting_requests() {
    let shutdown = Shutdown::new();
    let layer = StreamTimeoutLayer::new()
        .timeout(Duration::from_secs(3600))
        .shutdown(shutdown.clone());
    // An open stream: one event, then nothing for an hour.
    let stream = tokio::spawn(timed_frames(
        layer.clone(),
        Request::new(()),
        vec![ev(1), Step::Stall],
    ));
    // A request still waiting for its head.
    let slow = tower::service_fn(|_req: Request<()>| async {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok::<_, Infallible>(Response::new(ScriptBody::new([])))
    });
    let waiting = tokio::spawn(
        ServiceBuilder::new()
            .layer(layer.clone())
            .service(slow)
            .oneshot(Request::new(())),
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    shutdown.trigger();
    let (_, out) = stream.await.unwrap();
    assert_eq!(out[0], (0.0, "data: 1\n\n".into()));
    assert_eq!(
        out[1],
        (
            5.0,
            "ERR server_shutting_down: the server is shutting down: send the request again".into()
        )
    );
    assert_eq!(out.len(), 2);
    let response = waiting.await.unwrap().unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["error"]["code"], "server_shutting_down");
    // A request after the trigger is refused at once.
    let (status, out) = timed_frames(layer, Request::new(()), vec![ev(1), Step::Stall]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(out[0].1.contains("server_shutting_down"), "{out:?}");
}
