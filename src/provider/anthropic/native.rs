use crate::dialect::Dialect;
use crate::error::StreamError;
use crate::sse::Block;
use crate::standard::Frames;

/// Anthropic's stream for an Anthropic client: every event forwarded as it came (thinking
/// signatures, cache counts, `ping`s and event order kept), only framed canonically. The
/// stream is complete at `message_stop` or an `error` event; one that ends before was cut
/// off ([`StreamError::Truncated`]), which the error layer and the render layer report as
/// Anthropic's own `event: error`.
///
/// ```
/// use bytes::Bytes;
/// use tower_llm_stream::dialect::Dialect;
/// use tower_llm_stream::provider::anthropic::AnthropicNative;
/// use tower_llm_stream::sse::Decoder;
/// use tower_llm_stream::standard::Frames;
///
/// let mut dialect = AnthropicNative::new();
/// let mut frames = Frames::new();
/// let mut decoder = Decoder::new();
/// decoder.push(Bytes::from_static(b"event: ping\r\ndata: {\"type\":\"ping\"}\r\n\r\n"));
/// while let Some(block) = decoder.next_block() {
///     dialect.on_block(block.unwrap(), &mut frames).unwrap();
/// }
/// assert_eq!(&frames.pop().unwrap()[..], b"event: ping\ndata: {\"type\":\"ping\"}\n\n");
/// assert_eq!(dialect.on_end(&mut frames).unwrap_err().code(), "stream_truncated");
/// ```
#[derive(Debug, Clone, Default)]
pub struct AnthropicNative {
    ended: bool,
}

impl AnthropicNative {
    /// A dialect for one stream.
    #[must_use]
    pub fn new() -> Self {
        AnthropicNative::default()
    }
}

impl Dialect for AnthropicNative {
    fn on_block(&mut self, block: Block, out: &mut Frames) -> Result<(), StreamError> {
        if self.ended {
            return Ok(());
        }
        if let Some(event) = block.event() {
            self.ended = matches!(event.event_type(), Some("message_stop" | "error"));
        }
        out.push(block.normalized());
        Ok(())
    }

    /// The last event without its blank line is whole when it is `message_stop` (its data
    /// is complete JSON): the Anthropic SDK's own fixtures end that way.
    fn on_unterminated(&mut self, block: Block, out: &mut Frames) -> Result<(), StreamError> {
        let is_stop = block
            .event()
            .is_some_and(|e| e.event_type() == Some("message_stop"));
        if is_stop {
            return self.on_block(block, out);
        }
        Err(crate::dialect::cut_mid_event())
    }

    fn on_end(&mut self, _out: &mut Frames) -> Result<(), StreamError> {
        if self.ended {
            return Ok(());
        }
        Err(StreamError::Truncated {
            detail: "the Anthropic stream ended without message_stop",
        })
    }
}
