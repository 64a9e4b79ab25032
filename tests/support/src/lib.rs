//! Helpers shared by the integration tests of tower-llm-stream and of its example proxy.
#![allow(dead_code, missing_docs)]

use bytes::Bytes;
use tower_llm_stream::sse::{Block, DecodeError, Decoder};

/// What a conforming client sees of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub event: Option<String>,
    pub data: String,
    pub id: Option<String>,
    pub retry: Option<u64>,
}

/// A [`Seen`] event from its fields.
pub fn seen(event: Option<&str>, data: &str, id: Option<&str>, retry: Option<u64>) -> Seen {
    Seen {
        event: event.map(str::to_owned),
        data: data.to_owned(),
        id: id.map(str::to_owned),
        retry,
    }
}

/// Splits `input` at the given cut points (sorted, deduplicated, in range).
pub fn split_at(input: &[u8], cuts: &[usize]) -> Vec<Bytes> {
    let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(input.len())).collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut chunks = Vec::new();
    let mut start = 0;
    for cut in cuts.into_iter().chain([input.len()]) {
        if cut > start {
            chunks.push(Bytes::copy_from_slice(&input[start..cut]));
            start = cut;
        }
    }
    chunks
}

/// Fixed-size chunks (`0` = one chunk).
pub fn chunks_of(input: &[u8], size: usize) -> Vec<Bytes> {
    if size == 0 || input.is_empty() {
        return vec![Bytes::copy_from_slice(input)];
    }
    input.chunks(size).map(Bytes::copy_from_slice).collect()
}

/// Every block (and error) the decoder yields for these chunks, `finish` included.
pub fn blocks(decoder: &mut Decoder, chunks: Vec<Bytes>) -> Vec<Result<Block, DecodeError>> {
    let mut out = Vec::new();
    for chunk in chunks {
        decoder.push(chunk);
        while let Some(block) = decoder.next_block() {
            out.push(block);
        }
    }
    decoder.finish();
    while let Some(block) = decoder.next_block() {
        out.push(block);
    }
    out
}

/// The events a conforming client dispatches (unterminated blocks dropped).
pub fn events(chunks: Vec<Bytes>) -> Vec<Seen> {
    blocks(&mut Decoder::new(), chunks)
        .into_iter()
        .map(|b| b.expect("no decode error expected"))
        .filter(Block::is_terminated)
        .filter_map(Block::into_event)
        .map(|e| Seen {
            event: e.event_type().map(str::to_owned),
            data: e.data().to_owned(),
            id: e.id().map(str::to_owned),
            retry: e.retry(),
        })
        .collect()
}

/// Decodes `input` whole, byte by byte, and in 2-, 3- and 7-byte chunks; asserts all agree and
/// returns the events.
pub fn events_any_chunking(input: &[u8]) -> Vec<Seen> {
    let whole = events(chunks_of(input, 0));
    for size in [1, 2, 3, 7] {
        assert_eq!(
            events(chunks_of(input, size)),
            whole,
            "chunk size {size} changes the events of {:?}",
            String::from_utf8_lossy(input)
        );
    }
    whole
}

/// The bytes of a captured stream under `tests/fixtures/`.
pub fn fixture(path: &str) -> Vec<u8> {
    let full = format!("{}/../fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&full).unwrap_or_else(|e| panic!("cannot read {full}: {e}"))
}
pub mod client;
pub mod log;
pub mod process;
#[cfg(feature = "proxy")]
pub mod proxy;
pub mod raw;
pub mod redis;
pub mod script;

/// The content type a provider streams a fixture with (by its extension).
pub fn content_type_of(fixture: &str) -> &'static str {
    if fixture.ends_with(".ndjson") {
        "application/x-ndjson"
    } else if fixture.ends_with(".bin") {
        "application/vnd.amazon.eventstream"
    } else {
        "text/event-stream"
    }
}

/// Property-test cases: `PROPTEST_CASES` when set (for long local runs), else `default`.
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
pub mod dialects;

/// A body that hands out prepared chunks, each as soon as it is asked for: what a test that
/// counts allocations or instructions streams through the layers.
pub struct Chunks(pub std::collections::VecDeque<Bytes>);

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, std::convert::Infallible>>> {
        std::task::Poll::Ready(self.0.pop_front().map(|b| Ok(http_body::Frame::data(b))))
    }
}

/// An OpenAI chat chunk (a `gpt-4o-mini` content delta without the optional fields): 216 to
/// 221 bytes.
pub fn openai_chat_chunk(n: u64) -> Bytes {
    let word = [
        "Hello", " there", ",", " how", " can", " I", " help", " today", "?",
    ][n as usize % 9];
    Bytes::from(format!(
        "data: {{\"id\":\"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG\",\"object\":\"chat.completion.chunk\",\"created\":1741570283,\"model\":\"gpt-4o-mini\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{word}\"}},\"logprobs\":null,\"finish_reason\":null}}]}}\n\n"
    ))
}
