//! The per-stream `tracing` span, in its own test binary: tracing caches callsite interest
//! process-wide, so a subscriber must be the global one, with no other test racing it.

mod common;

use common::script::{Step, data, frames, sse_upstream, wait_secs};
use http::Request;
use std::sync::{Arc, Mutex};
use tower::{ServiceBuilder, ServiceExt};
use tower_llm_stream::error_event::ErrorEventLayer;
use tower_llm_stream::observe::{ObserveLayer, StreamLabels};
use tower_llm_stream::reframe::SseReframeLayer;
use tower_llm_stream::timeout::StreamTimeoutLayer;

/// A `MakeWriter` collecting everything the fmt subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test(start_paused = true)]
async fn one_span_per_stream_records_the_outcome() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let service = ServiceBuilder::new()
        .layer(ObserveLayer::new())
        .layer(ErrorEventLayer::new())
        .layer(StreamTimeoutLayer::new())
        .layer(SseReframeLayer::new())
        .service(sse_upstream(vec![
            wait_secs(1.5),
            data("data: 1\n\ndata: 2\n\n"),
            data("data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":3,\"total_tokens\":10}}\n\n"),
            data("data: [DONE]\n\n"),
        ]));
    let mut request = Request::new(());
    request
        .extensions_mut()
        .insert(StreamLabels::new("openai", "gpt-4o-mini"));
    let response = service.clone().oneshot(request).await.unwrap();
    frames(response.into_body()).await;

    let response = service.clone().oneshot(Request::new(())).await.unwrap();
    drop(response); // the client went away

    let timeout = ServiceBuilder::new()
        .layer(ObserveLayer::new())
        .layer(ErrorEventLayer::new())
        .layer(StreamTimeoutLayer::new())
        .layer(SseReframeLayer::new())
        .service(sse_upstream(vec![Step::Stall]));
    frames(timeout.oneshot(Request::new(())).await.unwrap().into_body()).await;

    let responses = ServiceBuilder::new()
        .layer(ObserveLayer::new())
        .layer(ErrorEventLayer::new())
        .layer(StreamTimeoutLayer::new())
        .layer(SseReframeLayer::new())
        .service(sse_upstream(vec![Step::Data(bytes::Bytes::from(
            common::fixture("openai/responses_text.sse"),
        ))]));
    frames(
        responses
            .oneshot(Request::new(()))
            .await
            .unwrap()
            .into_body(),
    )
    .await;

    // A whole (non-stream) body read the way hyper reads it: frames until the body says it
    // has ended, never polling it to `None`. That is a completed response, not a cancelled one.
    let json = ServiceBuilder::new()
        .layer(ObserveLayer::new())
        .layer(ErrorEventLayer::new())
        .service_fn(|_req: Request<()>| async {
            let response = http::Response::builder()
                .header("content-type", "application/json")
                .body(http_body_util::Full::new(bytes::Bytes::from_static(
                    b"{\"ok\":true}",
                )))
                .unwrap();
            Ok::<_, std::convert::Infallible>(response)
        });
    let mut body = json.oneshot(Request::new(())).await.unwrap().into_body();
    while !http_body::Body::is_end_stream(&body) {
        use http_body_util::BodyExt;
        body.frame().await.unwrap().unwrap();
    }
    drop(body);

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let ended: Vec<&str> = log.lines().filter(|l| l.contains("stream ended")).collect();
    assert_eq!(ended.len(), 5, "{log}");
    assert!(ended[4].contains("outcome=\"completed\""), "{}", ended[4]);
    let responses = ended[3];
    assert!(responses.contains("outcome=\"completed\""), "{responses}");
    assert!(
        responses.contains("gen_ai.usage.input_tokens=11"),
        "{responses}"
    );
    assert!(
        responses.contains("gen_ai.response.finish_reasons=\"[\\\"completed\\\"]\""),
        "{responses}"
    );
    let completed = ended[0];
    for field in [
        "gen_ai.provider.name=\"openai\"",
        "gen_ai.request.model=\"gpt-4o-mini\"",
        "http.response.status_code=200",
        "time_to_first_event_ms=1500",
        "events=4",
        "gen_ai.usage.input_tokens=7",
        "gen_ai.usage.output_tokens=3",
        "gen_ai.response.finish_reasons=\"[\\\"stop\\\"]\"",
        "outcome=\"completed\"",
    ] {
        assert!(completed.contains(field), "{field} missing in {completed}");
    }
    assert!(
        ended[1].contains("outcome=\"client_cancelled\""),
        "{}",
        ended[1]
    );
    assert!(ended[2].contains("outcome=\"timeout\""), "{}", ended[2]);
    assert!(
        ended[2].contains("error.code=\"stream_idle_timeout\""),
        "{}",
        ended[2]
    );
    assert!(
        log.lines()
            .any(|l| l.contains("WARN") && l.contains("stream_idle_timeout")),
        "errors are tracing events too"
    );
}
