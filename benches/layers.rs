//! The layers stacked over an in-memory OpenAI chat stream, against the bare body in the
//! same run: events per second, and so the cost per event of each layer. The fallback layer
//! twice: a request without targets, and one with a target that it did not need (the stream
//! read until its first content event, then committed).
//!
//! `stack/…`: the layers added one at a time as the proxy stacks them, with the
//! OpenAI-compatible dialect, over a real OpenAI chat stream (the `chat_text_include_usage`
//! capture stretched to 2,000 events, one chunk per event), beside `sse-stream` 0.3 merely
//! parsing the same chunks in the same run (issue 20: the whole stack at most 150 ns per
//! event, and no more than that parser).
//!
//! ```sh
//! cargo bench --bench layers
//! ```

mod support;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, black_box, criterion_group, criterion_main};
use futures_util::FutureExt;
use http::Request;
use std::collections::VecDeque;
use tower::{ServiceBuilder, ServiceExt};
use tower_llm_stream::LlmStreamLayer;
use tower_llm_stream::error_event::ErrorEventLayer;
use tower_llm_stream::fallback::{FallbackLayer, FallbackTargets};
use tower_llm_stream::provider::openai::OpenAiCompatible;
use tower_llm_stream::reframe::SseReframeLayer;
use tower_llm_stream::timeout::StreamTimeoutLayer;
use tower_llm_stream::usage::UsageLastChunkLayer;

use support::{drain, upstream};

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    let events = 2000;
    let stream = support::openai_chat_stream(events);
    let total_events = (events + 3) as u64;
    for (name, chunks) in [
        ("per_event_chunks", support::per_event_chunks(&stream)),
        ("1460B_segments", support::sized_chunks(&stream, 1460)),
    ] {
        let chunks: VecDeque<Bytes> = chunks.into();
        let mut group = c.benchmark_group(format!("layers/{name}"));
        group.throughput(Throughput::Elements(total_events));

        group.bench_function(BenchmarkId::new("bare_body", name), |b| {
            let service = upstream(chunks.clone());
            b.iter(|| {
                let response = service
                    .clone()
                    .oneshot(Request::new(()))
                    .now_or_never()
                    .unwrap()
                    .unwrap();
                drain(response.into_body())
            })
        });
        group.bench_function(BenchmarkId::new("reframe", name), |b| {
            let service = ServiceBuilder::new()
                .layer(SseReframeLayer::new())
                .service(upstream(chunks.clone()));
            b.iter(|| {
                let response = service
                    .clone()
                    .oneshot(Request::new(()))
                    .now_or_never()
                    .unwrap()
                    .unwrap();
                assert_eq!(drain(response.into_body()) as u64, total_events);
            })
        });
        group.bench_function(BenchmarkId::new("error_event+timeout+reframe", name), |b| {
            let service = ServiceBuilder::new()
                .layer(ErrorEventLayer::new())
                .layer(StreamTimeoutLayer::new())
                .layer(SseReframeLayer::new())
                .service(upstream(chunks.clone()));
            b.iter(|| {
                let response = service
                    .clone()
                    .oneshot(Request::new(()))
                    .now_or_never()
                    .unwrap()
                    .unwrap();
                assert_eq!(drain(response.into_body()) as u64, total_events);
            })
        });
        for with_targets in [false, true] {
            let id = if with_targets {
                "fallback(committed)+error_event+timeout+reframe"
            } else {
                "fallback(no targets)+error_event+timeout+reframe"
            };
            group.bench_function(BenchmarkId::new(id, name), |b| {
                let service = ServiceBuilder::new()
                    .layer(FallbackLayer::new())
                    .layer(ErrorEventLayer::new())
                    .layer(StreamTimeoutLayer::new())
                    .layer(SseReframeLayer::new())
                    .service(upstream(chunks.clone()));
                b.iter(|| {
                    let mut request = Request::new(());
                    if with_targets {
                        request
                            .extensions_mut()
                            .insert(FallbackTargets::new().then(|| Ok(Request::new(()))));
                    }
                    let response = service
                        .clone()
                        .oneshot(request)
                        .now_or_never()
                        .unwrap()
                        .unwrap();
                    assert_eq!(drain(response.into_body()) as u64, total_events);
                })
            });
        }
        group.finish();
    }
}

/// Drives `service` once over its upstream's chunks; returns the frame count. (Not inlined:
/// callgrind's `--toggle-collect` finds it.)
#[inline(never)]
fn stream_through<S, B>(service: &S) -> usize
where
    S: tower::Service<Request<()>, Response = http::Response<B>> + Clone,
    S::Error: std::fmt::Debug,
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let response = service
        .clone()
        .oneshot(Request::new(()))
        .now_or_never()
        .unwrap()
        .unwrap();
    drain(response.into_body())
}

/// `sse-stream` 0.3 parsing `chunks` (driven as the `Stream` it is, always ready): the events
/// with data.
#[inline(never)]
fn sse_stream_parse(chunks: &VecDeque<Bytes>) -> usize {
    use futures_util::StreamExt;
    let input = futures_util::stream::iter(chunks.iter().cloned().map(Ok::<_, std::io::Error>));
    sse_stream::SseByteStream::new(input)
        .filter_map(|e| async move { e.ok().filter(|e| e.data.is_some()).map(black_box) })
        .count()
        .now_or_never()
        .expect("always ready")
}

fn bench_stack(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    let events = 2000;
    let stream = support::openai_fixture_chat_stream(events);
    let chunks: VecDeque<Bytes> = support::per_event_chunks(&stream).into();
    assert_eq!(chunks.len(), events);
    let mut group = c.benchmark_group("stack/openai_chat_per_event_chunks");
    group.throughput(Throughput::Elements(events as u64));
    let upstream = || upstream(chunks.clone());
    let dialect = || SseReframeLayer::new().dialect(OpenAiCompatible::new());
    // Every event one frame; with the usage layer, the finish and usage chunks become one.
    let (all, merged) = (events, events - 1);

    group.bench_function("bare_body", |b| {
        let service = upstream();
        b.iter(|| assert_eq!(stream_through(&service), all))
    });
    group.bench_function("sse-stream_0.3_parse", |b| {
        b.iter(|| assert_eq!(sse_stream_parse(&chunks), all))
    });
    group.bench_function("reframe(openai)", |b| {
        let service = ServiceBuilder::new().layer(dialect()).service(upstream());
        b.iter(|| assert_eq!(stream_through(&service), all))
    });
    group.bench_function("error_event+reframe(openai)", |b| {
        let service = ServiceBuilder::new()
            .layer(ErrorEventLayer::new())
            .layer(dialect())
            .service(upstream());
        b.iter(|| assert_eq!(stream_through(&service), all))
    });
    group.bench_function("error_event+timeout+reframe(openai)", |b| {
        let service = ServiceBuilder::new()
            .layer(ErrorEventLayer::new())
            .layer(StreamTimeoutLayer::new())
            .layer(dialect())
            .service(upstream());
        b.iter(|| assert_eq!(stream_through(&service), all))
    });
    group.bench_function("error_event+usage+timeout+reframe(openai)", |b| {
        let service = ServiceBuilder::new()
            .layer(ErrorEventLayer::new())
            .layer(UsageLastChunkLayer::new())
            .layer(StreamTimeoutLayer::new())
            .layer(dialect())
            .service(upstream());
        b.iter(|| assert_eq!(stream_through(&service), merged))
    });
    group.bench_function("LlmStreamLayer(openai)", |b| {
        let service = ServiceBuilder::new()
            .layer(LlmStreamLayer::new().dialect(OpenAiCompatible::new()))
            .service(upstream());
        b.iter(|| assert_eq!(stream_through(&service), merged))
    });
    group.finish();
}

criterion_group!(benches, bench_stack, bench);
criterion_main!(benches);
