//! What rendering the standard chat stream into each client API costs per event, against the
//! same full stack serving OpenAI chat (no rendering) in the same run.
//!
//! ```sh
//! cargo bench --bench render
//! ```

mod support;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, black_box, criterion_group, criterion_main};
use futures_util::FutureExt;
use http::{Request, Response};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use tower::{Layer, Service, ServiceExt};
use tower_llm_stream::LlmStreamLayer;
use tower_llm_stream::provider::{AnyDialect, ClientApi, Endpoint};

/// Always-ready body over prepared chunks.
struct Chunks(VecDeque<Bytes>);

impl Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(|b| Ok(Frame::data(b))))
    }
}

fn upstream(
    chunks: VecDeque<Bytes>,
) -> impl Service<
    Request<()>,
    Response = Response<Chunks>,
    Error = Infallible,
    Future = std::future::Ready<Result<Response<Chunks>, Infallible>>,
> + Clone {
    tower::service_fn(move |_req: Request<()>| {
        let response = Response::builder()
            .header("content-type", "text/event-stream")
            .body(Chunks(chunks.clone()))
            .unwrap();
        std::future::ready(Ok(response))
    })
}

fn drain<B: Body<Data = Bytes>>(body: B) -> usize
where
    B::Error: std::fmt::Debug,
{
    let mut body = std::pin::pin!(body);
    let mut frames = 0;
    while let Some(frame) = body.frame().now_or_never().expect("always ready") {
        black_box(frame.unwrap());
        frames += 1;
    }
    frames
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    let events = 2000;
    let stream = support::openai_chat_stream(events);
    let chunks: VecDeque<Bytes> = support::per_event_chunks(&stream).into();
    let mut group = c.benchmark_group("render/per_event_chunks");
    group.throughput(Throughput::Elements((events + 3) as u64));
    for api in [
        ClientApi::ChatCompletions,
        ClientApi::Completions,
        ClientApi::Responses,
        ClientApi::AnthropicMessages,
        ClientApi::Gemini,
    ] {
        let service = LlmStreamLayer::new()
            .dialect(AnyDialect::for_provider(
                "openai",
                Endpoint::ChatCompletions,
            ))
            .layer(upstream(chunks.clone()));
        group.bench_function(BenchmarkId::new("full_stack", api.name()), |b| {
            b.iter(|| {
                let mut request = Request::new(());
                request.extensions_mut().insert(api);
                let response = service
                    .clone()
                    .oneshot(request)
                    .now_or_never()
                    .unwrap()
                    .unwrap();
                assert!(drain(response.into_body()) > events);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
