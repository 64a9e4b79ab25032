//! `FallbackLayer` inside the whole stack, on tokio's paused clock: every failure before the
//! commit falls back, nothing of a failed attempt reaches the client, the failed attempt is
//! dropped at once, the client's own errors and anything after the commit do not fall back.

mod common;

use common::script::{ScriptBody, Step, data, frames};
use http::{Request, Response, StatusCode};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tower::ServiceExt;
use tower_llm_stream::LlmStreamLayer;
use tower_llm_stream::fallback::{FailedAttempt, FallbackTargets};
use tower_llm_stream::observe::{StreamLabels, StreamSummary};
use tower_llm_stream::provider::AnyDialect;

/// What a scripted target does with a request.
#[derive(Clone)]
enum Script {
    /// No response at all (a refused connection).
    Refuse,
    /// No head, ever.
    Hang,
    /// A response with this status, headers and body steps.
    Answer(u16, Vec<(&'static str, &'static str)>, Vec<Step>),
}

fn role(id: &str) -> Step {
    data(format!(
        "data: {{\"id\":\"{id}\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{\"role\":\"assistant\",\"content\":\"\"}},\"finish_reason\":null}}]}}\n\n"
    ))
}

fn content(id: &str, text: &str) -> Step {
    data(format!(
        "data: {{\"id\":\"{id}\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{text}\"}},\"finish_reason\":null}}]}}\n\n"
    ))
}

fn finish(id: &str) -> Step {
    data(format!(
        "data: {{\"id\":\"{id}\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{}},\"finish_reason\":\"stop\"}}],\"usage\":{{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}}}\n\n"
    ))
}

fn sse(steps: Vec<Step>) -> Script {
    Script::Answer(200, vec![("content-type", "text/event-stream")], steps)
}

/// A whole good stream from `id`.
fn good(id: &str) -> Script {
    sse(vec![
        role(id),
        content(id, "from "),
        content(id, id),
        finish(id),
        data("data: [DONE]\n\n"),
    ])
}

/// A target's answer in flight.
type Answer =
    std::pin::Pin<Box<dyn Future<Output = Result<Response<ScriptBody>, std::io::Error>> + Send>>;

/// Targets `a`, `b`, `c` by host, each with a script, counting requests and dropped bodies.
#[derive(Clone, Default)]
struct Targets {
    scripts: Arc<Mutex<HashMap<&'static str, Script>>>,
    calls: Arc<Mutex<Vec<String>>>,
    dropped: Arc<Mutex<HashMap<String, Arc<AtomicBool>>>>,
}

impl Targets {
    fn new(scripts: &[(&'static str, Script)]) -> Self {
        let targets = Targets::default();
        targets
            .scripts
            .lock()
            .unwrap()
            .extend(scripts.iter().cloned());
        targets
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    fn dropped(&self, host: &str) -> bool {
        self.dropped.lock().unwrap()[host].load(Ordering::SeqCst)
    }

    fn service(
        &self,
    ) -> impl tower::Service<
        Request<()>,
        Response = Response<ScriptBody>,
        Error = std::io::Error,
        Future = Answer,
    > + Clone {
        let targets = self.clone();
        tower::service_fn(move |req: Request<()>| {
            let host = req.uri().host().unwrap_or_default().to_owned();
            targets.calls.lock().unwrap().push(host.clone());
            let script = targets.scripts.lock().unwrap()[host.as_str()].clone();
            let flag = Arc::new(AtomicBool::new(false));
            targets.dropped.lock().unwrap().insert(host, flag.clone());
            Box::pin(async move {
                match script {
                    Script::Refuse => Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionRefused,
                        "connection refused",
                    )),
                    Script::Hang => std::future::pending().await,
                    Script::Answer(status, headers, steps) => {
                        let mut response = Response::builder().status(status);
                        for (name, value) in headers {
                            response = response.header(name, value);
                        }
                        let mut body = ScriptBody::new(steps);
                        body.dropped = Some(flag);
                        Ok(response.body(body).unwrap())
                    }
                }
            }) as Answer
        })
    }
}

fn request_to(host: &str) -> Request<()> {
    let mut request = Request::post(format!("http://{host}/v1/chat/completions"))
        .body(())
        .unwrap();
    request
        .extensions_mut()
        .insert(StreamLabels::new(host.to_owned(), "m"));
    request
}

/// A request to `a` that falls back to `b`, then `c`.
fn with_fallbacks() -> Request<()> {
    let mut request = request_to("a");
    request.extensions_mut().insert(
        FallbackTargets::new()
            .then(|| Ok(request_to("b")))
            .then(|| Ok(request_to("c"))),
    );
    request
}

/// The whole stack over `targets`: the status, the `x`-less frames the client gets, and the
/// summary of the stream.
async fn run(targets: &Targets, request: Request<()>) -> (StatusCode, Vec<String>, StreamSummary) {
    let summaries: Arc<Mutex<Vec<StreamSummary>>> = Arc::default();
    let seen = summaries.clone();
    let stack = LlmStreamLayer::new()
        .dialect(AnyDialect::default())
        .on_stream_end(move |s: &StreamSummary| seen.lock().unwrap().push(s.clone()));
    let service = tower::Layer::layer(&stack, targets.service());
    let response = service.oneshot(request).await.unwrap();
    let status = response.status();
    let out = frames(response.into_body()).await;
    let summary = summaries.lock().unwrap().pop().expect("a summary");
    (status, out, summary)
}

fn text(out: &[String]) -> String {
    out.concat()
}

/// Asserts the client got exactly `b`'s stream, and `c` was never asked.
fn assert_served_by_b(
    targets: &Targets,
    status: StatusCode,
    out: &[String],
    summary: &StreamSummary,
) {
    assert_eq!(status, StatusCode::OK, "{out:?}");
    let all = text(out);
    assert!(
        !all.contains("\"id\":\"a\""),
        "nothing of a reaches the client: {all}"
    );
    assert_eq!(all.matches("\"role\":\"assistant\"").count(), 1, "{all}");
    assert!(all.contains("\"content\":\"b\""), "{all}");
    assert!(all.ends_with("data: [DONE]\n\n"), "{all}");
    assert!(!all.contains("\"error\""), "{all}");
    assert_eq!(targets.calls(), ["a", "b"]);
    assert_eq!(summary.provider.as_deref(), Some("b"));
    assert_eq!(summary.fallbacks.len(), 1, "{:?}", summary.fallbacks);
    assert_eq!(
        summary.fallbacks[0].labels.as_ref().map(|l| &*l.system),
        Some("a")
    );
}

#[tokio::test(start_paused = true)]
async fn every_failure_before_the_first_content_event_falls_back() {
    let failures: Vec<(&str, Script, Option<u16>, &str)> = vec![
        ("refused", Script::Refuse, Some(502), "upstream_unavailable"),
        ("no head", Script::Hang, Some(504), "upstream_timeout"),
        (
            "429",
            Script::Answer(
                429,
                vec![("retry-after", "7"), ("content-type", "application/json")],
                vec![data(
                    r#"{"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}}"#,
                )],
            ),
            Some(429),
            "rate_limit_exceeded",
        ),
        (
            "500",
            Script::Answer(500, vec![], vec![]),
            Some(500),
            "upstream_error",
        ),
        (
            "503",
            Script::Answer(503, vec![], vec![data("busy")]),
            Some(503),
            "upstream_error",
        ),
        (
            "error event",
            sse(vec![
                role("a"),
                data(
                    "data: {\"error\":{\"type\":\"server_error\",\"code\":\"overloaded\",\"message\":\"x\"}}\n\n",
                ),
                Step::Stall,
            ]),
            None,
            "overloaded",
        ),
        ("cut", sse(vec![role("a")]), None, "stream_truncated"),
        (
            "body error",
            sse(vec![role("a"), Step::Fail("reset")]),
            None,
            "upstream_body_error",
        ),
        (
            "silence",
            sse(vec![role("a"), Step::Stall]),
            None,
            "stream_idle_timeout",
        ),
        (
            "keep-alives only",
            sse(vec![
                data(": ping\n\n"),
                Step::Wait(Duration::from_secs(20)),
                data(": ping\n\n"),
                Step::Wait(Duration::from_secs(20)),
                Step::Stall,
            ]),
            None,
            "stream_idle_timeout",
        ),
    ];
    for (name, script, status, reason) in failures {
        let targets = Targets::new(&[("a", script), ("b", good("b")), ("c", good("c"))]);
        let (got, out, summary) = run(&targets, with_fallbacks()).await;
        assert_served_by_b(&targets, got, &out, &summary);
        let failed = &summary.fallbacks[0];
        assert_eq!(
            failed.status.map(|s| s.as_u16()),
            status,
            "{name}: {failed:?}"
        );
        assert_eq!(failed.reason, reason, "{name}: {failed:?}");
        assert_eq!(summary.usage.output_tokens, Some(2), "{name}");
        if name == "429" {
            assert_eq!(failed.retry_after.as_deref(), Some("7"));
            assert_eq!(
                failed.to_string(),
                "a/m: 429 rate_limit_exceeded (retry-after 7)"
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn the_failed_attempt_is_dropped_at_once() {
    // a's error event, then it would go on forever: its body must be dropped when b is tried.
    let a = sse(vec![
        role("a"),
        data(
            "data: {\"error\":{\"type\":\"server_error\",\"code\":\"overloaded\",\"message\":\"x\"}}\n\n",
        ),
        Step::Stall,
    ]);
    let b = sse(vec![role("b"), content("b", "b"), Step::Stall]);
    let targets = Targets::new(&[("a", a), ("b", b), ("c", good("c"))]);
    let stack = LlmStreamLayer::new().dialect(AnyDialect::default());
    let service = tower::Layer::layer(&stack, targets.service());
    let response = service.oneshot(with_fallbacks()).await.unwrap();
    // The head is there (b committed), b's stream is still open, a's body is gone.
    assert_eq!(response.status(), StatusCode::OK);
    assert!(targets.dropped("a"), "a's body was not dropped");
    assert!(!targets.dropped("b"));
    drop(response);
    assert!(targets.dropped("b"));
}

#[tokio::test(start_paused = true)]
async fn the_clients_own_errors_do_not_fall_back() {
    for status in [400, 401, 403, 404, 413, 422] {
        let a = Script::Answer(
            status,
            vec![("content-type", "application/json")],
            vec![data(
                r#"{"error":{"message":"bad","type":"invalid_request_error","code":"bad"}}"#,
            )],
        );
        let targets = Targets::new(&[("a", a), ("b", good("b")), ("c", good("c"))]);
        let (got, out, summary) = run(&targets, with_fallbacks()).await;
        assert_eq!(got.as_u16(), status);
        assert!(text(&out).contains("\"code\":\"bad\""), "{out:?}");
        assert_eq!(targets.calls(), ["a"]);
        assert!(summary.fallbacks.is_empty());
        assert_eq!(summary.provider.as_deref(), Some("a"));
    }
}

#[tokio::test(start_paused = true)]
async fn after_the_first_content_event_a_failure_is_an_error_event() {
    for tail in [vec![], vec![Step::Fail("reset")], vec![Step::Stall]] {
        let mut steps = vec![role("a"), content("a", "partial")];
        steps.extend(tail);
        let targets = Targets::new(&[("a", sse(steps)), ("b", good("b")), ("c", good("c"))]);
        let (got, out, summary) = run(&targets, with_fallbacks()).await;
        assert_eq!(got, StatusCode::OK);
        let all = text(&out);
        assert!(all.contains("\"content\":\"partial\""), "{all}");
        assert!(out.last().unwrap().contains("\"error\""), "{all}");
        assert_eq!(targets.calls(), ["a"]);
        assert!(summary.fallbacks.is_empty());
    }
}

#[tokio::test(start_paused = true)]
async fn when_every_target_fails_the_last_failure_is_the_answer() {
    let targets = Targets::new(&[
        ("a", Script::Answer(503, vec![], vec![])),
        ("b", Script::Refuse),
        (
            "c",
            Script::Answer(
                500,
                vec![("content-type", "application/json")],
                vec![data(
                    r#"{"error":{"message":"c broke","type":"server_error","code":"c_broke"}}"#,
                )],
            ),
        ),
    ]);
    let (got, out, summary) = run(&targets, with_fallbacks()).await;
    assert_eq!(got, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(text(&out).contains("c broke"), "{out:?}");
    assert_eq!(targets.calls(), ["a", "b", "c"]);
    let failed: Vec<String> = summary.fallbacks.iter().map(ToString::to_string).collect();
    assert_eq!(
        failed,
        ["a/m: 503 upstream_error", "b/m: 502 upstream_unavailable"]
    );
    assert_eq!(summary.provider.as_deref(), Some("c"));

    // A stream that fails on every target: the last one's error event, after its role chunk.
    let targets = Targets::new(&[
        ("a", sse(vec![role("a")])),
        ("b", sse(vec![role("b")])),
        ("c", sse(vec![role("c")])),
    ]);
    let (_, out, summary) = run(&targets, with_fallbacks()).await;
    let all = text(&out);
    assert!(
        all.contains("\"id\":\"c\"")
            && !all.contains("\"id\":\"a\"")
            && !all.contains("\"id\":\"b\""),
        "{all}"
    );
    assert!(all.contains("stream_truncated"), "{all}");
    assert_eq!(summary.fallbacks.len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_target_that_cannot_take_the_request_is_skipped_and_listed() {
    let targets = Targets::new(&[("a", Script::Refuse), ("b", good("b")), ("c", good("c"))]);
    let mut request = request_to("a");
    request.extensions_mut().insert(
        FallbackTargets::new()
            .then(|| {
                Err(FailedAttempt::new(
                    None,
                    "b/m: unsupported_parameter (top_k)",
                ))
            })
            .then(|| Ok(request_to("c"))),
    );
    let (got, out, summary) = run(&targets, request).await;
    assert_eq!(got, StatusCode::OK);
    assert!(text(&out).contains("\"content\":\"c\""));
    assert_eq!(targets.calls(), ["a", "c"]);
    let failed: Vec<String> = summary.fallbacks.iter().map(ToString::to_string).collect();
    assert_eq!(
        failed,
        [
            "a/m: 502 upstream_unavailable",
            "b/m: unsupported_parameter (top_k)"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn the_responses_lifecycle_of_a_failed_attempt_is_not_seen() {
    let created = |id: &str| {
        data(format!(
            "event: response.created\ndata: {{\"type\":\"response.created\",\"sequence_number\":0,\"response\":{{\"id\":\"{id}\",\"status\":\"in_progress\"}}}}\n\n"
        ))
    };
    let a = sse(vec![created("resp_a"), Step::Fail("reset")]);
    let b = sse(vec![
        created("resp_b"),
        data(
            "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":1,\"delta\":\"hi\"}\n\n",
        ),
        data(
            "event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":2,\"response\":{\"id\":\"resp_b\",\"status\":\"completed\"}}\n\n",
        ),
    ]);
    let targets = Targets::new(&[("a", a), ("b", b), ("c", good("c"))]);
    let (got, out, _) = run(&targets, with_fallbacks()).await;
    assert_eq!(got, StatusCode::OK);
    let all = text(&out);
    assert!(!all.contains("resp_a"), "{all}");
    assert_eq!(
        all.matches("response.created").count(),
        2,
        "event and type of b's: {all}"
    );
    assert!(all.contains("response.completed"));
}

#[tokio::test(start_paused = true)]
async fn without_targets_the_stream_is_the_same_as_without_the_layer() {
    use tower_llm_stream::{
        ErrorEventLayer, SseReframeLayer, StreamTimeoutLayer, UsageLastChunkLayer,
    };
    let script = sse(vec![
        role("a"),
        content("a", "x"),
        data(": ping\n\n"),
        content("a", "y"),
        finish("a"),
        data("data: [DONE]\n\n"),
    ]);
    let targets = Targets::new(&[("a", script.clone())]);
    let (_, with_layer, summary) = run(&targets, request_to("a")).await;
    assert!(summary.fallbacks.is_empty());
    let targets = Targets::new(&[("a", script)]);
    let without = tower::ServiceBuilder::new()
        .layer(ErrorEventLayer::new())
        .layer(UsageLastChunkLayer::new())
        .layer(StreamTimeoutLayer::new())
        .layer(SseReframeLayer::new().dialect(AnyDialect::default()))
        .service(targets.service());
    let response = without.oneshot(request_to("a")).await.unwrap();
    assert_eq!(with_layer, frames(response.into_body()).await);
}

#[tokio::test(start_paused = true)]
async fn the_client_a_stream_is_for_survives_a_fallback() {
    let targets = Targets::new(&[("a", Script::Refuse), ("b", good("b")), ("c", good("c"))]);
    let mut request = with_fallbacks();
    request
        .extensions_mut()
        .insert(StreamLabels::new("a", "m").client("team-a"));
    let (_, _, summary) = run(&targets, request).await;
    assert_eq!(summary.provider.as_deref(), Some("b"));
    assert_eq!(
        summary.client.as_deref(),
        Some("team-a"),
        "metered to the client"
    );
}

#[tokio::test(start_paused = true)]
async fn azure_filter_chunks_and_failed_responses_do_not_commit() {
    // Azure's first chunk has no choices; a Responses stream can fail before any output.
    let azure = sse(vec![
        data("data: {\"choices\":[],\"prompt_filter_results\":[{\"prompt_index\":0}]}\n\n"),
        data(
            "data: {\"error\":{\"type\":\"server_error\",\"code\":\"overloaded\",\"message\":\"x\"}}\n\n",
        ),
    ]);
    let targets = Targets::new(&[("a", azure), ("b", good("b")), ("c", good("c"))]);
    let (_, out, summary) = run(&targets, with_fallbacks()).await;
    assert!(!text(&out).contains("prompt_filter_results"), "{out:?}");
    assert_eq!(summary.fallbacks[0].reason, "overloaded");

    let failed = sse(vec![
        data(
            "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_a\"}}\n\n",
        ),
        data(
            "event: response.failed\ndata: {\"type\":\"response.failed\",\"sequence_number\":1,\"response\":{\"id\":\"resp_a\",\"status\":\"failed\",\"error\":{\"code\":\"server_error\",\"message\":\"x\"}}}\n\n",
        ),
    ]);
    let targets = Targets::new(&[("a", failed), ("b", good("b")), ("c", good("c"))]);
    let (_, out, summary) = run(&targets, with_fallbacks()).await;
    assert!(!text(&out).contains("resp_a"), "{out:?}");
    assert_eq!(summary.fallbacks[0].reason, "server_error");
}

#[tokio::test(start_paused = true)]
async fn a_stream_that_holds_too_much_before_content_commits() {
    // Role chunks past the 64 KiB held before the commit: committed there, no fallback.
    let mut steps: Vec<Step> = (0..600).map(|_| role("a")).collect();
    steps.push(Step::Fail("reset"));
    let targets = Targets::new(&[("a", sse(steps)), ("b", good("b")), ("c", good("c"))]);
    let (_, out, summary) = run(&targets, with_fallbacks()).await;
    assert_eq!(targets.calls(), ["a"]);
    assert!(summary.fallbacks.is_empty());
    assert!(
        out.last().unwrap().contains("\"error\""),
        "{:?}",
        out.last()
    );
}
