use crate::dialect::Dialect;
use crate::error::StreamError;
use crate::sse::Block;
use crate::standard::Frames;
use crate::standard::json;
use memchr::memmem;

/// Gemini's stream for a Gemini client: every chunk forwarded as it came (thought
/// signatures, usage, safety ratings kept), only framed canonically (Gemini ends lines with
/// CRLF). The stream is complete at the chunk with a `finishReason` or an error; one that
/// ends before was cut off ([`StreamError::Truncated`]), which the error layer and the
/// render layer report as Gemini's own `{"error":{…}}`.
///
/// ```
/// use bytes::Bytes;
/// use tower_llm_stream::dialect::Dialect;
/// use tower_llm_stream::provider::gemini::GeminiNative;
/// use tower_llm_stream::sse::Decoder;
/// use tower_llm_stream::standard::Frames;
///
/// let mut dialect = GeminiNative::new();
/// let mut frames = Frames::new();
/// let mut decoder = Decoder::new();
/// decoder.push(Bytes::from_static(b"data: {\"candidates\":[{\"finishReason\": \"STOP\"}]}\r\n\r\n"));
/// while let Some(block) = decoder.next_block() {
///     dialect.on_block(block.unwrap(), &mut frames).unwrap();
/// }
/// assert_eq!(frames.len(), 1);
/// assert!(dialect.on_end(&mut frames).is_ok());
/// ```
#[derive(Debug, Clone, Default)]
pub struct GeminiNative {
    ended: bool,
}

impl GeminiNative {
    /// A dialect for one stream.
    #[must_use]
    pub fn new() -> Self {
        GeminiNative::default()
    }
}

impl Dialect for GeminiNative {
    fn on_block(&mut self, block: Block, out: &mut Frames) -> Result<(), StreamError> {
        if self.ended {
            return Ok(());
        }
        if let Some(event) = block.event() {
            let data = event.data_bytes();
            let json: serde_json::Value =
                json::parse(data).map_err(|e| StreamError::MalformedEvent {
                    detail: format!("a Gemini chunk is not JSON: {e}"),
                })?;
            self.ended = json.get("error").is_some()
                || memmem::find(data, b"\"finishReason\"").is_some()
                    && json["candidates"]
                        .as_array()
                        .is_some_and(|c| c.iter().any(|c| c.get("finishReason").is_some()));
        }
        out.push(block.normalized());
        Ok(())
    }

    fn on_unterminated(&mut self, block: Block, out: &mut Frames) -> Result<(), StreamError> {
        crate::dialect::translate_if_whole_json(self, block, out)
    }

    fn on_end(&mut self, _out: &mut Frames) -> Result<(), StreamError> {
        if self.ended {
            return Ok(());
        }
        Err(StreamError::Truncated {
            detail: "the Gemini stream ended without a finishReason",
        })
    }
}
