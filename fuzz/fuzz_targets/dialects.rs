//! Every dialect, then the usage normalizer, on arbitrary upstream bytes (seeded with the
//! fixture streams): no panic, and the output is always a well-formed standard stream or ends
//! in one error event.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tower_llm_stream::dialect::{AnthropicMessages, Cohere, Dialect, Frames, Gemini, Ollama, OpenAiCompatible, OpenAiResponses, Passthrough};
use tower_llm_stream::ndjson::NdjsonDecoder;
use tower_llm_stream::sse::{Decoder, DecodeError};
use tower_llm_stream::usage::ChatNormalizer;

fn run<D: Dialect>(mut dialect: D, stream: &[u8], chunk: usize) -> (Vec<Bytes>, bool) {
    let mut decoder = Decoder::with_max_event_size(1 << 16);
    let mut frames = Frames::new();
    let mut failed = false;
    let mut feed = |decoder: &mut Decoder, frames: &mut Frames, failed: &mut bool| {
        while let Some(block) = decoder.next_block() {
            if *failed {
                continue;
            }
            let result = match block {
                Ok(block) if block.is_terminated() => dialect.on_block(block, frames),
                Ok(block) => dialect.on_unterminated(block, frames),
                Err(DecodeError::EventTooLarge { .. }) => Err(tower_llm_stream::StreamError::EventTooLarge { limit: 1 << 16 }),
                Err(_) => Ok(()),
            };
            *failed |= result.is_err();
        }
    };
    for part in stream.chunks(chunk.max(1)) {
        decoder.push(Bytes::copy_from_slice(part));
        feed(&mut decoder, &mut frames, &mut failed);
    }
    decoder.finish();
    feed(&mut decoder, &mut frames, &mut failed);
    if !failed {
        failed = dialect.on_end(&mut frames).is_err();
    }
    let mut normalizer = ChatNormalizer::new();
    let mut out = Frames::new();
    while let Some(frame) = frames.pop() {
        normalizer.on_frame(frame, &mut out);
    }
    (std::iter::from_fn(|| out.pop()).collect(), failed)
}

/// The NDJSON framing (Ollama): lines instead of SSE blocks, same dialect contract.
fn run_ndjson<D: Dialect>(mut dialect: D, stream: &[u8], chunk: usize) -> (Vec<Bytes>, bool) {
    let mut decoder = NdjsonDecoder::new(1 << 16);
    let mut frames = Frames::new();
    let mut failed = false;
    let mut feed = |decoder: &mut NdjsonDecoder, frames: &mut Frames, failed: &mut bool| {
        while let Some(block) = decoder.next_block() {
            if *failed {
                continue;
            }
            let result = match block {
                Ok(block) if block.is_terminated() => dialect.on_block(block, frames),
                Ok(block) => dialect.on_unterminated(block, frames),
                Err(_) => Err(tower_llm_stream::StreamError::EventTooLarge { limit: 1 << 16 }),
            };
            *failed |= result.is_err();
        }
    };
    for part in stream.chunks(chunk.max(1)) {
        decoder.push(Bytes::copy_from_slice(part));
        feed(&mut decoder, &mut frames, &mut failed);
    }
    decoder.finish();
    feed(&mut decoder, &mut frames, &mut failed);
    if !failed {
        failed = dialect.on_end(&mut frames).is_err();
    }
    let mut normalizer = ChatNormalizer::new();
    let mut out = Frames::new();
    while let Some(frame) = frames.pop() {
        normalizer.on_frame(frame, &mut out);
    }
    (std::iter::from_fn(|| out.pop()).collect(), failed)
}

fuzz_target!(|input: &[u8]| {
    let Some((&selector, stream)) = input.split_first() else { return };
    let chunk = 1 + usize::from(selector >> 3);
    let (frames, _failed) = match selector % 7 {
        0 => run(Passthrough::new(), stream, chunk),
        1 => run(OpenAiCompatible::new(), stream, chunk),
        2 => run(AnthropicMessages::new(), stream, chunk),
        3 => run(Gemini::new(), stream, chunk),
        4 => run(Cohere::new(), stream, chunk),
        5 => run(OpenAiResponses::new(), stream, chunk),
        _ => run_ndjson(Ollama::new(), stream, chunk),
    };
    let mut ended = false;
    for frame in &frames {
        // (A Responses stream may end `error` then `response.failed`.)
        let failed_after_error = frame.starts_with(b"event: response.failed\n");
        assert!(!ended || failed_after_error, "a frame after [DONE] or an error event: {frame:?}");
        // One canonical block per frame.
        assert!(frame.ends_with(b"\n\n") && !frame.contains(&b'\r'), "{frame:?}");
        let mut decoder = Decoder::new();
        decoder.push(frame.clone());
        let block = decoder.next_block().expect("a whole block").expect("no error");
        assert!(block.is_canonical());
        assert!(decoder.next_block().is_none(), "more than one block in {frame:?}");
        assert!(std::str::from_utf8(frame).is_ok());
        if let Some(event) = block.event() {
            // The end markers of the contract: untyped `[DONE]` or error object, `event: error`.
            let data = event.data();
            let untyped = event.event_type().is_none_or(str::is_empty);
            if (untyped && (data == "[DONE]" || data.starts_with("{\"error\""))) || event.event_type() == Some("error") {
                ended = true;
            }
        }
    }
});
