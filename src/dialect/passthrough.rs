use super::Dialect;
use crate::error::StreamError;
use crate::sse::Block;
use crate::standard::Frames;
use crate::standard::frame::{is_terminator, not_json};

/// Forwards each block as one canonical frame, untouched but for line endings and UTF-8
/// repair: for upstreams that already speak the OpenAI-compatible dialect, or any SSE stream.
///
/// An event whose data is a JSON object or array (its first byte `{` or `[`) that is not
/// whole JSON (a raw control character in a string, a cut object, bytes after it) ends the
/// stream with [`StreamError::MalformedEvent`]: a client's SDK would fail to parse it. Other
/// data (`[DONE]`, any SSE stream's text) is forwarded as it is;
/// [`OpenAiCompatible`](crate::provider::openai::OpenAiCompatible) requires JSON of every
/// event.
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
        }
        // Forwarded as it is: an object or an array (what an LLM upstream sends) must be whole
        // JSON, or a client's SDK fails to parse it; other data (`[DONE]`, any SSE stream's
        // text) passes.
        if let Some(event) = block.event() {
            let data = event.data_bytes();
            let first = data
                .iter()
                .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
            if matches!(first, Some(b'{' | b'[')) && &data[..] != b"[DONE]" {
                if let Some(detail) = not_json(data) {
                    return Err(StreamError::MalformedEvent { detail });
                }
            }
        }
        if !self.terminated && is_terminator(&block) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn run(mut dialect: Passthrough, input: &[u8]) -> (Vec<String>, Option<StreamError>) {
        crate::dialect::run_whole(&mut dialect, input)
    }

    #[test]
    fn data_that_is_not_json_is_a_malformed_event() {
        for (name, bad) in [
            ("raw NUL in a string", &b"data: {\"a\":\"x\0y\"}\n\n"[..]),
            ("truncated object", b"data: {\"a\":[1,\n\n"),
            ("trailing garbage", b"data: {\"a\":1}}\n\n"),
            ("split by a lone CR", b"data: {\"a\":\"x\ry\"}\n\n"),
            (
                "typed",
                b"event: response.output_text.delta\ndata: {\"delta\":\"x\n\n",
            ),
            ("an array cut", b"data:  [1, 2\n\n"),
        ] {
            for dialect in [Passthrough::new(), Passthrough::any_end()] {
                let mut input = b"data: {\"a\":1}\n\n".to_vec();
                input.extend_from_slice(bad);
                input.extend_from_slice(b"data: [DONE]\n\n");
                let (frames, failure) = run(dialect, &input);
                assert_eq!(frames, ["data: {\"a\":1}\n\n"], "{name}");
                let failure = failure.unwrap_or_else(|| panic!("{name}: no error"));
                assert_eq!(failure.code(), "malformed_event", "{name}: {failure}");
            }
        }
    }

    #[test]
    fn json_and_done_pass_and_a_spaced_error_ends_the_stream() {
        let input = concat!(
            ": ping\n\n",
            "data: { \"a\" : [ 1 , 2 ] }\n\n",
            "data: { \"error\" : { \"message\" : \"no\" } }\n\n",
            "data: {\"after\":1}\n\n",
        );
        let (frames, failure) = run(Passthrough::new(), input.as_bytes());
        assert!(failure.is_none(), "the error ended the stream: {failure:?}");
        assert_eq!(
            frames,
            [
                ": ping\n\n",
                "data: { \"a\" : [ 1 , 2 ] }\n\n",
                "data: { \"error\" : { \"message\" : \"no\" } }\n\n",
            ]
        );
        let (frames, failure) = run(Passthrough::new(), b"data: 1\n\ndata: hi\n\ndata: [DONE]");
        assert!(failure.is_none(), "{failure:?}");
        assert_eq!(frames, ["data: 1\n\n", "data: hi\n\n", "data: [DONE]\n\n"]);
    }
}
