//! The layers stacked over an in-memory OpenAI chat stream, against the bare body in the
//! same run: events per second, and so the cost per event of each layer. The fallback layer
//! twice: a request without targets, and one with a target that it did not need (the stream
//! read until its first content event, then committed).
//!
//! ```sh
//! cargo bench --bench layers
//! ```

mod support;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures_util::FutureExt;
use http::Request;
use std::collections::VecDeque;
use tower::{ServiceBuilder, ServiceExt};
use tower_llm_stream::error_event::ErrorEventLayer;
use tower_llm_stream::fallback::{FallbackLayer, FallbackTargets};
use tower_llm_stream::reframe::SseReframeLayer;
use tower_llm_stream::timeout::StreamTimeoutLayer;

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

criterion_group!(benches, bench);
criterion_main!(benches);
