use super::Dialect;
use crate::error::StreamError;
use crate::sse::Block;
use crate::standard::Frames;
use crate::standard::frame::is_terminator;

/// Forwards each block as one canonical frame, untouched but for line endings and UTF-8
/// repair: for upstreams that already speak the OpenAI-compatible dialect, or any SSE stream.
///
/// By default it expects the stream to end with what marks a complete OpenAI-style stream:
/// `data: [DONE]`, a Responses API terminal event (`response.completed`,
/// `response.incomplete`, `response.failed`, `error`), or an error object
/// (`data: {"error":…}`). An upstream that ends without one was cut off, and
/// [`on_end`](Dialect::on_end) reports [`StreamError::Truncated`].
/// Nothing is forwarded after that end (but the `response.failed` OpenAI sends after a
/// Responses `error` event).
/// [`Passthrough::any_end`] accepts any clean end and forwards everything (for SSE streams
/// that have no terminator).
///
/// ```
/// use bytes::Bytes;
/// use tower_llm_stream::dialect::{Dialect, Passthrough};
/// use tower_llm_stream::standard::Frames;
/// use tower_llm_stream::sse::Decoder;
///
/// let mut dialect = Passthrough::new();
/// let mut frames = Frames::new();
/// let mut decoder = Decoder::new();
/// decoder.push(Bytes::from_static(b"data: {\"a\":1}\r\n\r\n"));
/// while let Some(block) = decoder.next_block() {
///     dialect.on_block(block.unwrap(), &mut frames).unwrap();
/// }
/// assert_eq!(&frames.pop().unwrap()[..], b"data: {\"a\":1}\n\n");
/// // No [DONE]: the upstream was cut off.
/// assert_eq!(dialect.on_end(&mut frames).unwrap_err().code(), "stream_truncated");
/// ```
#[derive(Debug, Clone)]
pub struct Passthrough {
    require_terminator: bool,
    terminated: bool,
    ended_by_error: bool,
}

impl Default for Passthrough {
    fn default() -> Self {
        Passthrough::new()
    }
}

impl Passthrough {
    /// Pass-through that requires an OpenAI-style terminator.
    #[must_use]
    pub fn new() -> Self {
        Passthrough {
            require_terminator: true,
            terminated: false,
            ended_by_error: false,
        }
    }

    /// Pass-through that accepts any clean end of the upstream body.
    #[must_use]
    pub fn any_end() -> Self {
        Passthrough {
            require_terminator: false,
            terminated: false,
            ended_by_error: false,
        }
    }
}

impl Dialect for Passthrough {
    fn on_block(&mut self, block: Block, out: &mut Frames) -> Result<(), StreamError> {
        if self.terminated && self.require_terminator {
            // Nothing follows the end of an LLM stream, but the `response.failed` that
            // OpenAI sends after a Responses `error` event.
            let failed_after_error = self.ended_by_error
                && block
                    .event()
                    .is_some_and(|e| e.event_type() == Some("response.failed"));
            if !failed_after_error {
                return Ok(());
            }
            self.ended_by_error = false;
        } else if is_terminator(&block) {
            self.terminated = true;
            self.ended_by_error = block
                .event()
                .is_some_and(|e| e.event_type() == Some("error"));
        }
        out.push(block.normalized());
        Ok(())
    }

    /// Accepts an unfinished last block only when it is the terminator (`data: [DONE]`
    /// without its blank line): nothing can be missing from it.
    fn on_unterminated(&mut self, block: Block, out: &mut Frames) -> Result<(), StreamError> {
        if is_terminator(&block) && block.event().is_some_and(|e| e.data() == "[DONE]") {
            return self.on_block(block, out);
        }
        Err(super::cut_mid_event())
    }

    fn on_end(&mut self, _out: &mut Frames) -> Result<(), StreamError> {
        if self.require_terminator && !self.terminated {
            return Err(StreamError::Truncated {
                detail: "the upstream ended without [DONE] or a terminal event",
            });
        }
        Ok(())
    }
}
