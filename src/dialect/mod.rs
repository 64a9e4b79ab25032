//! Translation of upstream event dialects into the canonical stream.
//!
//! A [`Dialect`] is pure translation: one upstream [`Block`] in, zero or more canonical frames
//! out, no I/O and no timers. [`SseReframeLayer`](crate::reframe::SseReframeLayer) drives it.
//! [`Passthrough`] forwards OpenAI-compatible streams as they are, one canonical frame per block.

mod passthrough;

pub use passthrough::Passthrough;

use crate::error::StreamError;
use crate::sse::Block;
use crate::standard::Frames;

/// Translates one upstream dialect into the canonical stream.
///
/// Implementations are state machines over the upstream's blocks; the reframer calls
/// [`on_block`](Self::on_block) for each complete block and [`on_end`](Self::on_end) once when
/// the upstream body ends cleanly.
///
/// ```
/// use bytes::Bytes;
/// use tower_llm_stream::dialect::Dialect;
/// use tower_llm_stream::standard::Frames;
/// use tower_llm_stream::sse::Block;
/// use tower_llm_stream::StreamError;
///
/// /// Forwards events, drops comments, never requires a terminator.
/// #[derive(Clone)]
/// struct EventsOnly;
///
/// impl Dialect for EventsOnly {
///     fn on_block(&mut self, block: Block, out: &mut Frames) -> Result<(), StreamError> {
///         if block.event().is_some() {
///             out.push(block.canonical());
///         }
///         Ok(())
///     }
///     fn on_end(&mut self, _out: &mut Frames) -> Result<(), StreamError> {
///         Ok(())
///     }
/// }
/// ```
pub trait Dialect: Send + 'static {
    /// Translates one complete upstream block, appending canonical frames (each one whole
    /// event or comment block, LF line endings) to `out`.
    ///
    /// An `Err` ends the stream with that error after the frames already in `out`.
    fn on_block(&mut self, block: Block, out: &mut Frames) -> Result<(), StreamError>;

    /// The upstream body ended cleanly but inside a block (no closing blank line). By default
    /// that is [`StreamError::Truncated`]; a dialect may accept a block that is complete in
    /// itself (say, its terminator) by translating it like any other.
    fn on_unterminated(&mut self, block: Block, out: &mut Frames) -> Result<(), StreamError> {
        let _ = (block, out);
        Err(cut_mid_event())
    }

    /// The framing this dialect reads besides SSE: the reframer then takes responses of that
    /// content type too (one line, or one binary message, per block) and answers
    /// `text/event-stream`.
    fn framing(&self) -> Framing {
        Framing::Sse
    }

    /// The upstream body ended. Appends any closing frames; returns
    /// [`StreamError::Truncated`] when the upstream never sent the event that marks a complete
    /// stream.
    fn on_end(&mut self, out: &mut Frames) -> Result<(), StreamError>;
}

/// How an upstream frames its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Framing {
    /// `text/event-stream`.
    Sse,
    /// `application/x-ndjson`: one JSON object per line (Ollama's native API).
    Ndjson,
    /// `application/vnd.amazon.eventstream`: binary messages with CRC-32 checks (Bedrock).
    AwsEventStream,
}

/// The error for a stream that ended inside an event.
pub(crate) fn cut_mid_event() -> StreamError {
    StreamError::Truncated {
        detail: "the upstream ended in the middle of an event",
    }
}

/// For dialects whose events are whole JSON documents: a last block without its closing blank
/// line (or newline) lost nothing if its data parses, so it is translated like any other.
pub(crate) fn translate_if_whole_json<D: Dialect + ?Sized>(
    dialect: &mut D,
    block: Block,
    out: &mut Frames,
) -> Result<(), StreamError> {
    let whole = block
        .event()
        .is_some_and(|e| crate::standard::probe::is_json(e.data_bytes()));
    if whole {
        dialect.on_block(block, out)
    } else {
        Err(cut_mid_event())
    }
}

/// Runs `dialect` over `input` decoded whole: the frames out, and the error that ended the
/// stream, if any (for the dialects' unit tests).
#[cfg(test)]
pub(crate) fn run_whole<D: Dialect>(
    dialect: &mut D,
    input: &[u8],
) -> (Vec<String>, Option<crate::error::StreamError>) {
    let mut decoder = crate::sse::Decoder::new();
    decoder.push(bytes::Bytes::copy_from_slice(input));
    decoder.finish();
    let mut out = Frames::new();
    let mut failure = None;
    while let Some(block) = decoder.next_block() {
        let block = block.unwrap();
        let result = if block.is_terminated() {
            dialect.on_block(block, &mut out)
        } else {
            dialect.on_unterminated(block, &mut out)
        };
        if let Err(err) = result {
            failure = Some(err);
            break;
        }
    }
    if failure.is_none() {
        failure = dialect.on_end(&mut out).err();
    }
    let frames = std::iter::from_fn(|| out.pop())
        .map(|f| String::from_utf8(f.to_vec()).unwrap())
        .collect();
    (frames, failure)
}
