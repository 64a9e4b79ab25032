//! Decoder throughput against the peers, measured in the same run:
//! `eventsource-stream` 0.2 and `sse-stream` 0.3 (both driven as the `Stream`s they are, over an
//! always-ready stream of chunks, so each poll is pure parsing).
//!
//! ```sh
//! cargo bench --bench decoder
//! ```

mod support;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, black_box, criterion_group, criterion_main};
use futures_util::{FutureExt, StreamExt, stream};
use std::convert::Infallible;
use tower_llm_stream::sse::Decoder;

fn ours(chunks: &[Bytes]) -> usize {
    let mut decoder = Decoder::new();
    let mut events = 0;
    for chunk in chunks {
        decoder.push(chunk.clone());
        while let Some(block) = decoder.next_block() {
            if let Ok(block) = block {
                if let Some(event) = block.event() {
                    black_box(event.data_bytes());
                    events += 1;
                }
            }
        }
    }
    decoder.finish();
    while decoder.next_block().is_some() {}
    events
}

fn sse_stream(chunks: &[Bytes]) -> usize {
    let input = stream::iter(chunks.iter().cloned().map(Ok::<_, std::io::Error>));
    sse_stream::SseByteStream::new(input)
        .filter_map(|e| async move { e.ok().filter(|e| e.data.is_some()).map(black_box) })
        .count()
        .now_or_never()
        .expect("always ready")
}

fn eventsource_stream(chunks: &[Bytes]) -> usize {
    let input = stream::iter(chunks.iter().cloned().map(Ok::<_, Infallible>));
    eventsource_stream::EventStream::new(input)
        .filter_map(|e| async move { e.ok().map(black_box) })
        .count()
        .now_or_never()
        .expect("always ready")
}

fn bench(c: &mut Criterion) {
    let chat = support::openai_chat_stream(2000);
    let large = support::large_event_stream(8, 1 << 20);
    let workloads = [
        (
            "chat_per_event",
            support::per_event_chunks(&chat),
            chat.len(),
        ),
        (
            "chat_1460B_segments",
            support::sized_chunks(&chat, 1460),
            chat.len(),
        ),
        (
            "large_1MiB_events_16KiB",
            support::sized_chunks(&large, 16 << 10),
            large.len(),
        ),
    ];
    for (name, chunks, bytes) in &workloads {
        let expected = ours(chunks);
        assert_eq!(sse_stream(chunks), expected, "{name}: sse-stream disagrees");
        assert_eq!(
            eventsource_stream(chunks),
            expected,
            "{name}: eventsource-stream disagrees"
        );
        let mut group = c.benchmark_group(format!("decode/{name}"));
        group.throughput(Throughput::Bytes(*bytes as u64));
        if *name == "large_1MiB_events_16KiB" {
            group.sample_size(20);
        }
        group.bench_with_input(
            BenchmarkId::new("tower-llm-stream", name),
            chunks,
            |b, c| b.iter(|| ours(c)),
        );
        group.bench_with_input(BenchmarkId::new("sse-stream", name), chunks, |b, c| {
            b.iter(|| sse_stream(c))
        });
        group.bench_with_input(
            BenchmarkId::new("eventsource-stream", name),
            chunks,
            |b, c| b.iter(|| eventsource_stream(c)),
        );
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
