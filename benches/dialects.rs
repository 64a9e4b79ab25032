//! Dialect translation plus the usage layer, against the bare reframer in the same run:
//! events per second for an OpenAI chat stream (pass-through with quirk checks), an Anthropic
//! stream and a Gemini stream (translated).
//!
//! ```sh
//! cargo bench --bench dialects
//! ```

mod support;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, black_box, criterion_group, criterion_main};
use tower_llm_stream::dialect::{Dialect, Passthrough};
use tower_llm_stream::provider::anthropic::AnthropicMessages;
use tower_llm_stream::provider::gemini::Gemini;
use tower_llm_stream::provider::openai::OpenAiCompatible;
use tower_llm_stream::sse::Decoder;
use tower_llm_stream::standard::Frames;
use tower_llm_stream::usage::ChatNormalizer;

/// Decoder → dialect (→ usage normalizer): what the reframer and usage bodies do per frame.
fn translate<D: Dialect>(mut dialect: D, chunks: &[Bytes], usage: bool) -> usize {
    let mut decoder = Decoder::new();
    let mut frames = Frames::new();
    let mut out = Frames::new();
    let mut normalizer = ChatNormalizer::new();
    let mut count = 0;
    let mut drain = |frames: &mut Frames, out: &mut Frames, normalizer: &mut ChatNormalizer| {
        while let Some(frame) = frames.pop() {
            if usage {
                normalizer.on_frame(frame, out);
                while let Some(frame) = out.pop() {
                    black_box(frame);
                    count += 1;
                }
            } else {
                black_box(frame);
                count += 1;
            }
        }
    };
    for chunk in chunks {
        decoder.push(chunk.clone());
        while let Some(block) = decoder.next_block() {
            dialect.on_block(block.unwrap(), &mut frames).unwrap();
        }
        drain(&mut frames, &mut out, &mut normalizer);
    }
    dialect.on_end(&mut frames).unwrap();
    drain(&mut frames, &mut out, &mut normalizer);
    count
}

fn bench(c: &mut Criterion) {
    let events = 2000;
    let openai = support::per_event_chunks(&support::openai_chat_stream(events));
    let anthropic = support::per_event_chunks(&support::anthropic_stream(events));
    let gemini = support::sized_chunks(&support::gemini_stream(events), 1 << 20);

    let mut group = c.benchmark_group("dialects");
    group.throughput(Throughput::Elements(events as u64));
    group.bench_function(BenchmarkId::new("bare_reframer", "openai"), |b| {
        b.iter(|| translate(Passthrough::new(), &openai, false))
    });
    group.bench_function(BenchmarkId::new("openai_compatible+usage", "openai"), |b| {
        b.iter(|| translate(OpenAiCompatible::new(), &openai, true))
    });
    group.bench_function(BenchmarkId::new("bare_reframer", "anthropic"), |b| {
        b.iter(|| translate(Passthrough::any_end(), &anthropic, false))
    });
    group.bench_function(BenchmarkId::new("anthropic+usage", "anthropic"), |b| {
        b.iter(|| translate(AnthropicMessages::new(), &anthropic, true))
    });
    group.bench_function(BenchmarkId::new("bare_reframer", "gemini"), |b| {
        b.iter(|| translate(Passthrough::any_end(), &gemini, false))
    });
    group.bench_function(BenchmarkId::new("gemini+usage", "gemini"), |b| {
        b.iter(|| translate(Gemini::new(), &gemini, true))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
