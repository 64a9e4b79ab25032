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
//! `capability/…`: each capability over the same stream through the whole stack, beside the
//! stack without it (issue 20: what each costs when used, and that it costs nothing when not):
//! fallback targets present but unused, the stack without its fallback layer, an
//! `on_stream_end` callback doing a metrics recorder's work, the resume layer outside the stack
//! for a request that is not resumable and for one that is (in-memory store: a producer task
//! and the reader, on a current-thread runtime). The renderers' cost per client API is
//! `benches/render.rs`.
//!
//! ```sh
//! cargo bench --bench layers
//! ```

mod support;

use bytes::Bytes;
use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, Throughput, black_box, criterion_group, criterion_main,
};
use futures_util::FutureExt;
use http::Request;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tower::{Layer, ServiceBuilder, ServiceExt};
use tower_llm_stream::LlmStreamLayer;
use tower_llm_stream::error_event::ErrorEventLayer;
use tower_llm_stream::fallback::{FallbackLayer, FallbackTargets};
use tower_llm_stream::observe::{ObserveLayer, OnStreamEnd, StreamSummary};
use tower_llm_stream::provider::openai::OpenAiCompatible;
use tower_llm_stream::reframe::SseReframeLayer;
use tower_llm_stream::render::RenderLayer;
use tower_llm_stream::resume::{MemoryStore, Resumable, ResumeLayer};
use tower_llm_stream::timeout::StreamTimeoutLayer;
use tower_llm_stream::usage::UsageLastChunkLayer;

use support::{drain, upstream};

/// A current-thread runtime with timers (the timeout layer's clock, the resume store's waits).
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

/// The `stack/…` and `capability/…` input (the real OpenAI chat capture stretched to `events`
/// events, one chunk per event) and the group `name`, its throughput in those events.
fn fixture_group<'c>(
    c: &'c mut Criterion,
    name: &str,
    events: usize,
) -> (BenchmarkGroup<'c, WallTime>, VecDeque<Bytes>) {
    let stream = support::openai_fixture_chat_stream(events);
    let chunks: VecDeque<Bytes> = support::per_event_chunks(&stream).into();
    assert_eq!(chunks.len(), events);
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(events as u64));
    (group, chunks)
}

/// A request without extensions.
fn plain() -> Request<()> {
    Request::new(())
}

fn bench(c: &mut Criterion) {
    let runtime = runtime();
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
            b.iter(|| stream_through(&service, plain))
        });
        group.bench_function(BenchmarkId::new("reframe", name), |b| {
            let service = ServiceBuilder::new()
                .layer(SseReframeLayer::new())
                .service(upstream(chunks.clone()));
            b.iter(|| assert_eq!(stream_through(&service, plain) as u64, total_events))
        });
        group.bench_function(BenchmarkId::new("error_event+timeout+reframe", name), |b| {
            let service = ServiceBuilder::new()
                .layer(ErrorEventLayer::new())
                .layer(StreamTimeoutLayer::new())
                .layer(SseReframeLayer::new())
                .service(upstream(chunks.clone()));
            b.iter(|| assert_eq!(stream_through(&service, plain) as u64, total_events))
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
                let request = || {
                    let mut request = Request::new(());
                    if with_targets {
                        request
                            .extensions_mut()
                            .insert(FallbackTargets::new().then(|| Ok(Request::new(()))));
                    }
                    request
                };
                b.iter(|| assert_eq!(stream_through(&service, request) as u64, total_events))
            });
        }
        group.finish();
    }
}

/// Drives `service` once, with the request `request` makes, over its upstream's chunks;
/// returns the frame count. (Not inlined: callgrind's `--toggle-collect` finds it.)
#[inline(never)]
fn stream_through<S, B>(service: &S, request: impl FnOnce() -> Request<()>) -> usize
where
    S: tower::Service<Request<()>, Response = http::Response<B>> + Clone,
    S::Error: std::fmt::Debug,
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let response = service
        .clone()
        .oneshot(request())
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
    let (runtime, events) = (runtime(), 2000);
    let _guard = runtime.enter();
    let (mut group, chunks) = fixture_group(c, "stack/openai_chat_per_event_chunks", events);
    let upstream = || upstream(chunks.clone());
    let dialect = || SseReframeLayer::new().dialect(OpenAiCompatible::new());
    // Every event one frame; with the usage layer, the finish and usage chunks become one.
    let (all, merged) = (events, events - 1);

    let mut rows = Rows {
        group: &mut group,
        frames: all,
    };
    rows.add("bare_body", upstream(), plain);
    rows.group.bench_function("sse-stream_0.3_parse", |b| {
        b.iter(|| assert_eq!(sse_stream_parse(&chunks), all))
    });
    let reframe = ServiceBuilder::new().layer(dialect()).service(upstream());
    rows.add("reframe(openai)", reframe, plain);
    let error_event = ServiceBuilder::new()
        .layer(ErrorEventLayer::new())
        .layer(dialect())
        .service(upstream());
    rows.add("error_event+reframe(openai)", error_event, plain);
    let timeout = ServiceBuilder::new()
        .layer(ErrorEventLayer::new())
        .layer(StreamTimeoutLayer::new())
        .layer(dialect())
        .service(upstream());
    rows.add("error_event+timeout+reframe(openai)", timeout, plain);
    // From here on with the usage layer: `merged` frames.
    rows.frames = merged;
    let usage = ServiceBuilder::new()
        .layer(ErrorEventLayer::new())
        .layer(UsageLastChunkLayer::new())
        .layer(StreamTimeoutLayer::new())
        .layer(dialect())
        .service(upstream());
    rows.add("error_event+usage+timeout+reframe(openai)", usage, plain);
    let stack = ServiceBuilder::new()
        .layer(LlmStreamLayer::new().dialect(OpenAiCompatible::new()))
        .service(upstream());
    rows.add("LlmStreamLayer(openai)", stack, plain);
    group.finish();
}

/// [`stream_through`] for a service whose body needs the runtime (a producer task, a store's
/// waits): the whole request on `runtime`, the tasks it spawns included. (Not inlined either.)
#[inline(never)]
fn stream_through_runtime<S, B>(
    runtime: &tokio::runtime::Runtime,
    service: &S,
    request: impl FnOnce() -> Request<()>,
) -> usize
where
    S: tower::Service<Request<()>, Response = http::Response<B>> + Clone,
    S::Error: std::fmt::Debug,
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    use futures_util::StreamExt;
    runtime.block_on(async {
        let response = service.clone().oneshot(request()).await;
        let frames = http_body_util::BodyStream::new(response.unwrap().into_body());
        frames.map(|f| black_box(f.unwrap())).count().await
    })
}

/// The rows of a group, each asserting that its streams have `frames` frames.
struct Rows<'g, 'c> {
    group: &'g mut BenchmarkGroup<'c, WallTime>,
    frames: usize,
}

impl Rows<'_, '_> {
    /// A row: `service` serving the requests `request` makes, through [`stream_through`].
    fn add<S, B>(&mut self, name: &str, service: S, request: impl Fn() -> Request<()>)
    where
        S: tower::Service<Request<()>, Response = http::Response<B>> + Clone,
        S::Error: std::fmt::Debug,
        B: http_body::Body<Data = Bytes>,
        B::Error: std::fmt::Debug,
    {
        let frames = self.frames;
        self.group.bench_function(name, |b| {
            b.iter(|| assert_eq!(stream_through(&service, &request), frames))
        });
    }
}

/// What a metrics recorder does with each stream's summary: a few counters (streams, events,
/// bytes, output tokens).
#[derive(Clone, Default)]
struct Counters(Arc<[AtomicU64; 4]>);

impl OnStreamEnd for Counters {
    fn on_stream_end(&self, summary: &StreamSummary) {
        let [streams, events, bytes, tokens] = &*self.0;
        streams.fetch_add(1, Ordering::Relaxed);
        events.fetch_add(summary.events, Ordering::Relaxed);
        bytes.fetch_add(summary.bytes, Ordering::Relaxed);
        tokens.fetch_add(summary.usage.output_tokens.unwrap_or(0), Ordering::Relaxed);
    }
}

/// Each capability through the whole stack over the `stack/…` input, beside the stack without
/// it. See the module docs.
fn bench_capabilities(c: &mut Criterion) {
    let (runtime, events) = (runtime(), 2000);
    let _guard = runtime.enter();
    let name = "capability/openai_chat_per_event_chunks";
    let (mut group, chunks) = fixture_group(c, name, events);
    let upstream = || upstream(chunks.clone());
    let stack = || LlmStreamLayer::new().dialect(OpenAiCompatible::new());
    // The usage layer makes the finish and usage chunks one: a frame fewer than events.
    let frames = events - 1;

    // A fallback target that is never tried: the first stream commits.
    let with_target = || {
        let mut request = plain();
        let targets = FallbackTargets::new().then(|| Ok(plain()));
        request.extensions_mut().insert(targets);
        request
    };
    // The stack's layers in its order, but for the fallback layer.
    let without_fallback = ServiceBuilder::new()
        .layer(RenderLayer::new())
        .layer(ObserveLayer::new())
        .layer(ErrorEventLayer::new())
        .layer(UsageLastChunkLayer::new())
        .layer(StreamTimeoutLayer::new())
        .layer(SseReframeLayer::new().dialect(OpenAiCompatible::new()))
        .service(upstream());
    let counters = Counters::default();
    let metered = stack().on_stream_end(counters.clone()).layer(upstream());
    // Once, to see the callback run (not through `stream_through`: callgrind counts that).
    let response = metered.clone().oneshot(plain()).now_or_never().unwrap();
    assert_eq!(drain(response.unwrap().into_body()), frames);
    assert_eq!(counters.0[0].load(Ordering::Relaxed), 1, "called");
    // A new stream id per request; a 16 MiB store, so the oldest finished streams are evicted
    // as in a full server's store (and the bench stays small).
    let next = AtomicU64::new(0);
    let resumable = || {
        let mut request = plain();
        let id = format!("bench-{}", next.fetch_add(1, Ordering::Relaxed));
        request.extensions_mut().insert(Resumable::new(id));
        request
    };
    // The resume layer wants an `Unpin` body: the stack's, boxed (the proxy boxes it too).
    let store = MemoryStore::new().max_total_bytes(16 << 20);
    let resume = ServiceBuilder::new()
        .layer(ResumeLayer::new(store))
        .map_response(|response: http::Response<_>| response.map(Box::pin))
        .service(stack().layer(upstream()));

    let mut rows = Rows {
        group: &mut group,
        frames,
    };
    rows.add("stack", stack().layer(upstream()), plain);
    let unused_target = "stack+fallback_targets(committed_first)";
    rows.add(unused_target, stack().layer(upstream()), with_target);
    rows.add("stack_without_fallback_layer", without_fallback, plain);
    rows.add("stack+on_stream_end", metered, plain);
    rows.add("stack+resume_layer(not_resumable)", resume.clone(), plain);
    // A resumable stream needs the runtime (its producer task): beside it, the same layer and
    // request not resumable, driven the same way.
    let on_runtime: [(&str, &dyn Fn() -> Request<()>); 2] = [
        ("stack+resume_layer(not_resumable,on_runtime)", &plain),
        ("stack+resume_layer(resumable,memory)", &resumable),
    ];
    for (name, request) in on_runtime {
        group.bench_function(name, |b| {
            b.iter(|| assert_eq!(stream_through_runtime(&runtime, &resume, request), frames))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_stack, bench_capabilities, bench);
criterion_main!(benches);
