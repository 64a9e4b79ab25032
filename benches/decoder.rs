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

/// The library's own probe (crate-internal there), compiled here as it is.
#[allow(dead_code, unreachable_pub)]
#[path = "../src/standard/probe.rs"]
mod crate_probe;

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

/// The layers' key probes on an OpenAI content chunk that holds none of the keys (the common
/// case, where the whole chunk is scanned; `"content"` and `"finish_reason"` are there, with
/// values that do not count): one `memmem` search per exact string (what the layers did
/// first), one packed multi-needle pass over the exact strings (aho-corasick's Teddy, what
/// they did next: `"finish_reason":"` missed `"finish_reason": "stop"`), and the library's
/// probe as it is (`src/standard/probe.rs`: the keys with their quotes, each place one is
/// found checked by what follows it, and the escapes that may hide a key, in one pass).
/// Then the dialects' check that the same chunk is JSON: the library's validator against
/// serde_json reading it as `IgnoredAny`.
fn probe(c: &mut Criterion) {
    use crate_probe::{Needle, Value};
    let chunk: &[u8] = br#"{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o-2024-08-06","service_tier":"default","system_fingerprint":"fp_f9f4fb6dbf","choices":[{"index":0,"delta":{"content":" Hello"},"logprobs":null,"finish_reason":null}]}"#;
    type Set<'a> = (&'a str, &'a [&'a [u8]], &'a [Needle]);
    let sets: [Set; 3] = [
        (
            "dialect_7_keys",
            &[
                b"\"reasoning\":",
                b"\"content\":[",
                b"\"tool_calls\":",
                b"\"error\":",
                b"\"transcript.text.delta\"",
                b"speech.audio.done\"",
                b"transcript.text.done\"",
            ],
            &[
                Needle::Key(b"\"reasoning\"", Value::Any),
                Needle::Key(b"\"content\"", Value::Starts(b'[')),
                Needle::Key(b"\"tool_calls\"", Value::Any),
                Needle::Key(b"\"error\"", Value::Any),
                Needle::Text(b"\"transcript.text.delta\""),
                Needle::Text(b"speech.audio.done\""),
                Needle::Text(b"transcript.text.done\""),
            ],
        ),
        (
            "normalizer_3_keys",
            &[b"\"finish_reason\":\"", b"\"usage\":{", b"\"x_groq\":"],
            &[
                Needle::Key(b"\"finish_reason\"", Value::NotNull),
                Needle::Key(b"\"usage\"", Value::Starts(b'{')),
                Needle::Key(b"\"x_groq\"", Value::Any),
            ],
        ),
        (
            "observer_1_key",
            &[b"\"finish_reason\":\""],
            &[Needle::Key(b"\"finish_reason\"", Value::Starts(b'"'))],
        ),
    ];
    let mut group = c.benchmark_group("probe");
    group.throughput(Throughput::Bytes(chunk.len() as u64));
    for (name, exact, keys) in sets {
        let finders: Vec<memchr::memmem::Finder> =
            exact.iter().map(memchr::memmem::Finder::new).collect();
        group.bench_function(BenchmarkId::new("memmem_per_exact_string", name), |b| {
            b.iter(|| finders.iter().any(|f| f.find(black_box(chunk)).is_some()))
        });
        let packed = aho_corasick::packed::Config::new()
            .match_kind(aho_corasick::packed::MatchKind::LeftmostFirst)
            .builder()
            .extend(exact)
            .build()
            .expect("a packed searcher on this machine");
        group.bench_function(BenchmarkId::new("packed_exact_strings", name), |b| {
            b.iter(|| packed.find(black_box(chunk)).is_some())
        });
        let needles = crate_probe::Needles::new(keys);
        assert!(!needles.any_in(chunk));
        group.bench_function(BenchmarkId::new("crate_keys_checked", name), |b| {
            b.iter(|| needles.any_in(black_box(chunk)))
        });
    }
    assert!(crate_probe::is_json(chunk));
    group.bench_function(BenchmarkId::new("json_check", "crate_is_json"), |b| {
        b.iter(|| crate_probe::is_json(black_box(chunk)))
    });
    group.bench_function(
        BenchmarkId::new("json_check", "serde_json_ignored_any"),
        |b| b.iter(|| serde_json::from_slice::<serde::de::IgnoredAny>(black_box(chunk)).is_ok()),
    );
    group.finish();
}

criterion_group!(benches, bench, probe);
criterion_main!(benches);
