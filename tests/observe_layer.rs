//! `ObserveLayer`'s summary, through the whole stack (`LlmStreamLayer::on_stream_end`): one
//! summary per stream, whatever way it ends, with what the client was sent.

mod common;

use common::script::{Step, data, frames, sse_upstream, upstream, wait_secs};
use http::{Request, StatusCode};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tower::{Layer, ServiceExt};
use tower_llm_stream::LlmStreamLayer;
use tower_llm_stream::observe::{ClientStall, Outcome, StreamLabels, StreamSummary};

type Seen = Arc<Mutex<Vec<StreamSummary>>>;

/// Runs one request through the stack over `upstream`, reading the body to its end unless
/// `read` is false; returns the one summary.
async fn summary<U>(upstream: U, read: bool) -> StreamSummary
where
    U: tower::Service<
            Request<()>,
            Response = http::Response<common::script::ScriptBody>,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    U::Future: Send,
{
    let seen: Seen = Arc::default();
    let meter = seen.clone();
    let service = LlmStreamLayer::new()
        .on_stream_end(move |s: &StreamSummary| meter.lock().unwrap().push(s.clone()))
        .layer(upstream);
    let mut request = Request::new(());
    request
        .extensions_mut()
        .insert(StreamLabels::new("openai", "gpt-4o-mini"));
    let response = service.oneshot(request).await.unwrap();
    if read {
        frames(response.into_body()).await;
    } else {
        drop(response);
    }
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1, "one summary per stream: {seen:?}");
    seen[0].clone()
}

const FINISH: &str = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":3,\"total_tokens\":10}}\n\n";
const CONTENT: &str = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n";

#[tokio::test(start_paused = true)]
async fn a_completed_stream_reports_usage_reasons_and_timing() {
    let s = summary(
        sse_upstream(vec![
            wait_secs(2.0),
            data(CONTENT),
            data(FINISH),
            data("data: [DONE]\n\n"),
        ]),
        true,
    )
    .await;
    assert_eq!(s.outcome, Outcome::Completed);
    assert_eq!(s.error_code, None);
    assert_eq!(s.provider.as_deref(), Some("openai"));
    assert_eq!(s.model.as_deref(), Some("gpt-4o-mini"));
    assert_eq!(s.status, Some(StatusCode::OK));
    assert_eq!(
        (s.usage.input_tokens, s.usage.output_tokens),
        (Some(7), Some(3))
    );
    assert_eq!(s.finish_reasons, ["length"]);
    assert_eq!(s.time_to_first_event, Some(Duration::from_secs(2)));
    assert_eq!(s.events, 3); // content, the normalizer's last chunk, [DONE]
}

#[tokio::test(start_paused = true)]
async fn a_timeout_is_a_timeout_with_its_code() {
    let s = summary(sse_upstream(vec![data(CONTENT), Step::Stall]), true).await;
    assert_eq!(s.outcome, Outcome::Timeout);
    assert_eq!(s.error_code.as_deref(), Some("stream_idle_timeout"));
    assert_eq!(s.usage.input_tokens, None, "usage is never invented");
}

#[tokio::test(start_paused = true)]
async fn an_upstream_error_event_and_a_reset_are_errors() {
    let s = summary(
        sse_upstream(vec![data(
            "data: {\"error\":{\"type\":\"overloaded_error\",\"code\":\"overloaded\",\"message\":\"busy\"}}\n\n",
        )]),
        true,
    )
    .await;
    assert_eq!(s.outcome, Outcome::Error);
    assert_eq!(s.error_code.as_deref(), Some("overloaded"));
    let s = summary(sse_upstream(vec![data(CONTENT), Step::Fail("reset")]), true).await;
    assert_eq!(s.outcome, Outcome::Error);
    assert_eq!(s.error_code.as_deref(), Some("upstream_body_error"));
}

#[tokio::test(start_paused = true)]
async fn a_dropped_body_is_client_cancelled() {
    let s = summary(sse_upstream(vec![data(CONTENT), Step::Stall]), false).await;
    assert_eq!(s.outcome, Outcome::ClientCancelled);
}

#[tokio::test(start_paused = true)]
async fn an_error_response_is_an_http_error_with_the_normalized_code() {
    let error = tower::service_fn(|_req: Request<()>| async {
        let mut response = upstream(
            "application/json",
            vec![data("{\"error\":{\"message\":\"slow down\",\"type\":\"requests\",\"code\":\"rate_limit_exceeded\"}}")],
        )
        .oneshot(Request::new(()))
        .await?;
        *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        Ok::<_, std::convert::Infallible>(response)
    });
    let s = summary(error, true).await;
    assert_eq!(s.outcome, Outcome::HttpError);
    assert_eq!(s.status, Some(StatusCode::TOO_MANY_REQUESTS));
    assert_eq!(s.error_code.as_deref(), Some("rate_limit_exceeded"));
}

#[tokio::test(start_paused = true)]
async fn a_body_dropped_for_a_stalled_client_is_client_stalled() {
    let seen: Seen = Arc::default();
    let meter = seen.clone();
    let service = LlmStreamLayer::new()
        .on_stream_end(move |s: &StreamSummary| meter.lock().unwrap().push(s.clone()))
        .layer(sse_upstream(vec![data(CONTENT), Step::Stall]));
    let stall = ClientStall::new();
    let mut request = Request::new(());
    request.extensions_mut().insert(stall.clone());
    let response = service.oneshot(request).await.unwrap();
    // The server drops the connection of a client that read nothing: it marks it first.
    stall.mark();
    drop(response);
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0].outcome, Outcome::ClientStalled);
    assert_eq!(seen[0].outcome.as_str(), "client_stalled");
}

/// Counts starts and ends, and keeps the summaries.
#[derive(Clone, Default)]
struct Meter {
    open: Arc<std::sync::atomic::AtomicI64>,
    seen: Seen,
}

impl tower_llm_stream::observe::OnStreamEnd for Meter {
    fn on_stream_end(&self, summary: &StreamSummary) {
        self.open.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        self.seen.lock().unwrap().push(summary.clone());
    }

    fn on_stream_start(&self, labels: Option<&StreamLabels>) {
        assert_eq!(labels.map(|l| &*l.model), Some("gpt-4o-mini"));
        self.open.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test(start_paused = true)]
async fn a_request_dropped_before_its_head_still_ends_once() {
    let meter = Meter::default();
    let upstream = tower::service_fn(|_req: Request<()>| async {
        std::future::pending::<
            Result<http::Response<common::script::ScriptBody>, std::convert::Infallible>,
        >()
        .await
    });
    let service = LlmStreamLayer::new()
        .on_stream_end(meter.clone())
        .layer(upstream);
    let mut request = Request::new(());
    request
        .extensions_mut()
        .insert(StreamLabels::new("openai", "gpt-4o-mini").client("team-a"));
    let call = service.oneshot(request);
    // The client goes after 1 s, before any head.
    assert!(
        tokio::time::timeout(Duration::from_secs(1), call)
            .await
            .is_err()
    );
    assert_eq!(meter.open.load(std::sync::atomic::Ordering::SeqCst), 0);
    let seen = meter.seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].outcome, Outcome::ClientCancelled);
    assert_eq!(seen[0].status, None);
    assert_eq!(seen[0].client.as_deref(), Some("team-a"));
    assert_eq!(seen[0].duration, Duration::from_secs(1));
}
