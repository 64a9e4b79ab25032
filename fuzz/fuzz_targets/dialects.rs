//! Every dialect, then the usage normalizer, on arbitrary upstream bytes (seeded with the
//! fixture streams): no panic, and the output is always a well-formed standard stream or ends
//! in one error event.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tower_llm_stream::standard::Frames;
use tower_llm_stream::dialect::{Dialect, Passthrough};
use tower_llm_stream::provider::anthropic::AnthropicMessages;
use tower_llm_stream::provider::bedrock::Bedrock;
use tower_llm_stream::provider::cohere::Cohere;
use tower_llm_stream::provider::gemini::Gemini;
use tower_llm_stream::provider::ollama::Ollama;
use tower_llm_stream::provider::openai::{OpenAiCompatible, OpenAiResponses};
use tower_llm_stream::eventstream::EventStreamDecoder;
use tower_llm_stream::ndjson::NdjsonDecoder;
use tower_llm_stream::sse::{Block, DecodeError, Decoder};
use tower_llm_stream::usage::ChatNormalizer;
use tower_llm_stream::StreamError;

const LIMIT: usize = 1 << 16;

/// The three framings behind one face.
trait Framer {
    fn push(&mut self, chunk: Bytes);
    fn finish(&mut self);
    fn next(&mut self) -> Option<Result<Block, DecodeError>>;
}

macro_rules! framer {
    ($t:ty) => {
        impl Framer for $t {
            fn push(&mut self, chunk: Bytes) {
                <$t>::push(self, chunk)
            }
            fn finish(&mut self) {
                <$t>::finish(self)
            }
            fn next(&mut self) -> Option<Result<Block, DecodeError>> {
                self.next_block()
            }
        }
    };
}
framer!(Decoder);
framer!(NdjsonDecoder);
framer!(EventStreamDecoder);

fn run<F: Framer, D: Dialect>(mut framer: F, mut dialect: D, stream: &[u8], chunk: usize) -> Vec<Bytes> {
    let mut frames = Frames::new();
    let mut failed = false;
    let mut feed = |framer: &mut F, frames: &mut Frames, failed: &mut bool| {
        while let Some(block) = framer.next() {
            if *failed {
                continue;
            }
            let result = match block {
                Ok(block) if block.is_terminated() => dialect.on_block(block, frames),
                Ok(block) => dialect.on_unterminated(block, frames),
                Err(_) => Err(StreamError::EventTooLarge { limit: LIMIT }),
            };
            *failed |= result.is_err();
        }
    };
    for part in stream.chunks(chunk.max(1)) {
        framer.push(Bytes::copy_from_slice(part));
        feed(&mut framer, &mut frames, &mut failed);
    }
    framer.finish();
    feed(&mut framer, &mut frames, &mut failed);
    if !failed {
        let _ = dialect.on_end(&mut frames);
    }
    let mut normalizer = ChatNormalizer::new();
    let mut out = Frames::new();
    while let Some(frame) = frames.pop() {
        normalizer.on_frame(frame, &mut out);
    }
    std::iter::from_fn(|| out.pop()).collect()
}

fuzz_target!(|input: &[u8]| {
    let Some((&selector, stream)) = input.split_first() else { return };
    let chunk = 1 + usize::from(selector >> 3);
    let sse = || Decoder::with_max_event_size(LIMIT);
    let frames = match selector % 8 {
        0 => run(sse(), Passthrough::new(), stream, chunk),
        1 => run(sse(), OpenAiCompatible::new(), stream, chunk),
        2 => run(sse(), AnthropicMessages::new(), stream, chunk),
        3 => run(sse(), Gemini::new(), stream, chunk),
        4 => run(sse(), Cohere::new(), stream, chunk),
        5 => run(sse(), OpenAiResponses::new(), stream, chunk),
        6 => run(NdjsonDecoder::new(LIMIT), Ollama::new(), stream, chunk),
        _ => run(EventStreamDecoder::new(LIMIT), Bedrock::new(), stream, chunk),
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
