//! What rendering the standard chat stream into each client API costs per event, against the
//! same full stack serving OpenAI chat (no rendering) in the same run.
//!
//! ```sh
//! cargo bench --bench render
//! ```

mod support;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures_util::FutureExt;
use http::Request;
use std::collections::VecDeque;
use tower::{Layer, ServiceExt};
use tower_llm_stream::LlmStreamLayer;
use tower_llm_stream::provider::{AnyDialect, ClientApi, Endpoint};

use support::{drain, upstream};

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
