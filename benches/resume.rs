//! What a resumable stream costs per event, with the in-memory store, against the same stream
//! not made resumable, in the same run: the producer task storing each event and the client
//! reading it back from the store.
//!
//! ```sh
//! cargo bench --bench resume
//! ```

mod support;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use http::Request;
use http_body_util::BodyExt;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use tower::{ServiceBuilder, ServiceExt};
use tower_llm_stream::resume::{MemoryStore, Resumable, ResumeLayer};

use support::upstream;

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let events = 2000;
    let stream = support::openai_chat_stream(events);
    let total_events = (events + 3) as u64;
    let chunks: VecDeque<Bytes> = support::per_event_chunks(&stream).into();
    let mut group = c.benchmark_group("resume");
    group.throughput(Throughput::Elements(total_events));
    let store = MemoryStore::new();
    let next = AtomicU64::new(0);
    group.bench_function(BenchmarkId::new("no_layer", "per_event_chunks"), |b| {
        let service = upstream(chunks.clone());
        b.to_async(&runtime).iter(|| {
            let service = service.clone();
            async move {
                let body = service.oneshot(Request::new(())).await.unwrap().into_body();
                let mut body = std::pin::pin!(body);
                let mut frames = 0u64;
                while let Some(frame) = body.frame().await {
                    criterion::black_box(frame.unwrap());
                    frames += 1;
                }
                assert_eq!(frames, total_events);
            }
        })
    });
    for resumable in [false, true] {
        let id = if resumable {
            "resumable(memory)"
        } else {
            "not_resumable"
        };
        group.bench_function(BenchmarkId::new(id, "per_event_chunks"), |b| {
            let service = ServiceBuilder::new()
                .layer(ResumeLayer::new(store.clone()))
                .service(upstream(chunks.clone()));
            b.to_async(&runtime).iter(|| {
                let service = service.clone();
                let mut request = Request::new(());
                if resumable {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    request
                        .extensions_mut()
                        .insert(Resumable::new(format!("bench-{n}")));
                }
                async move {
                    let body = service.oneshot(request).await.unwrap().into_body();
                    let mut body = std::pin::pin!(body);
                    let mut frames = 0u64;
                    while let Some(frame) = body.frame().await {
                        criterion::black_box(frame.unwrap());
                        frames += 1;
                    }
                    assert_eq!(frames, total_events);
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
