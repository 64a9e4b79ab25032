//! Decoder on arbitrary bytes with arbitrary chunking: no panic, memory bounded by the limit,
//! the same output as one chunk, and canonical blocks that decode to the same events.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tower_llm_stream::sse::{Block, DecodeError, Decoder};

const LIMIT: usize = 4096;

fn run(chunks: impl Iterator<Item = Bytes>) -> Vec<Result<Block, DecodeError>> {
    let mut decoder = Decoder::with_max_event_size(LIMIT);
    let mut out = Vec::new();
    let mut input_len = 0u64;
    for chunk in chunks {
        input_len += chunk.len() as u64;
        decoder.push(chunk);
        while let Some(block) = decoder.next_block() {
            out.push(block);
        }
        assert!(decoder.held_bytes() <= LIMIT + 1, "held {} > limit", decoder.held_bytes());
    }
    decoder.finish();
    while let Some(block) = decoder.next_block() {
        out.push(block);
    }
    // Linear scan: each byte once by the line scanner, at most once more for field names
    // (+ the two bytes of a BOM prefix that turned out to be data).
    assert!(decoder.bytes_scanned() <= 2 * input_len + 4);
    out
}

fn summary(out: &[Result<Block, DecodeError>]) -> Vec<Result<(Bytes, bool, Option<String>), DecodeError>> {
    out.iter()
        .map(|b| {
            b.clone().map(|b| {
                (b.canonical(), b.is_terminated(), b.event().map(|e| format!("{e:?}")))
            })
        })
        .collect()
}

fuzz_target!(|input: &[u8]| {
    // First byte: a chunk-size seed; the rest: the stream.
    let Some((&seed, stream)) = input.split_first() else { return };
    let stream = Bytes::copy_from_slice(stream);
    let whole = run(std::iter::once(stream.clone()));
    let mut at = 0;
    let mut state = u32::from(seed) | 1;
    let chunks = std::iter::from_fn(|| {
        if at >= stream.len() {
            return None;
        }
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let size = 1 + (state >> 16) as usize % 17;
        let end = (at + size).min(stream.len());
        let chunk = stream.slice(at..end);
        at = end;
        Some(chunk)
    });
    let chunked = run(chunks);
    assert_eq!(summary(&whole), summary(&chunked));

    // Canonical blocks re-decode to the same events.
    let canonical: Vec<u8> = whole
        .iter()
        .filter_map(|b| b.as_ref().ok())
        .filter(|b| b.is_terminated())
        .flat_map(|b| b.canonical().to_vec())
        .collect();
    let again = run(std::iter::once(Bytes::from(canonical)));
    let events = |out: &[Result<Block, DecodeError>]| -> Vec<String> {
        out.iter()
            .filter_map(|b| b.as_ref().ok())
            .filter(|b| b.is_terminated())
            .filter_map(|b| b.event().map(|e| format!("{:?}{:?}{:?}", e.event_type(), e.data(), e.retry())))
            .collect()
    };
    assert_eq!(events(&whole), events(&again));
});
