//! Newline-delimited JSON framing (Ollama's native streams), yielding the same [`Block`]s as
//! the SSE decoder so dialects handle both alike.

use crate::sse::{Block, DecodeError};
use bytes::{BufMut, Bytes, BytesMut};

/// An incremental NDJSON line decoder: each non-blank line is one [`Block`] whose event data
/// is the line (a trailing CR removed, invalid UTF-8 replaced). Zero-copy for lines that
/// arrive whole; linear; lines longer than the limit are [`DecodeError::EventTooLarge`] and
/// skipped.
///
/// ```
/// use bytes::Bytes;
/// use tower_llm_stream::ndjson::NdjsonDecoder;
///
/// let mut decoder = NdjsonDecoder::new(1024);
/// decoder.push(Bytes::from_static(b"{\"a\":1}\n\n{\"b\""));
/// assert_eq!(decoder.next_block().unwrap().unwrap().event().unwrap().data(), "{\"a\":1}");
/// assert!(decoder.next_block().is_none());
/// decoder.push(Bytes::from_static(b":2}\r\n"));
/// assert_eq!(decoder.next_block().unwrap().unwrap().event().unwrap().data(), "{\"b\":2}");
/// ```
#[derive(Debug)]
pub struct NdjsonDecoder {
    max_line: usize,
    input: Bytes,
    pos: usize,
    held: BytesMut,
    discarding: bool,
    finished: bool,
}

impl NdjsonDecoder {
    /// A decoder accepting lines of at most `max_line` bytes.
    #[must_use]
    pub fn new(max_line: usize) -> Self {
        NdjsonDecoder {
            max_line,
            input: Bytes::new(),
            pos: 0,
            held: BytesMut::new(),
            discarding: false,
            finished: false,
        }
    }

    /// Adds the next chunk. Drain [`next_block`](Self::next_block) first (else the unread part
    /// is copied).
    pub fn push(&mut self, chunk: Bytes) {
        if self.pos < self.input.len() {
            let mut joined = BytesMut::with_capacity(self.input.len() - self.pos + chunk.len());
            joined.put_slice(&self.input[self.pos..]);
            joined.put_slice(&chunk);
            self.input = joined.freeze();
        } else {
            self.input = chunk;
        }
        self.pos = 0;
        self.finished = false;
    }

    /// Marks the end of the stream; the next calls yield what is left, a last line without
    /// its newline as an unterminated block.
    pub fn finish(&mut self) {
        self.finished = true;
    }

    /// The next line, `None` when more input is needed or the stream is exhausted.
    #[allow(clippy::should_implement_trait)]
    pub fn next_block(&mut self) -> Option<Result<Block, DecodeError>> {
        loop {
            if self.pos >= self.input.len() {
                self.input = Bytes::new();
                self.pos = 0;
                if !self.finished || self.held.is_empty() {
                    return None;
                }
                let line = self.held.split().freeze();
                if std::mem::take(&mut self.discarding) {
                    return None;
                }
                return line_block(line, false).map(Ok);
            }
            let rest = &self.input[self.pos..];
            let Some(newline) = memchr::memchr(b'\n', rest) else {
                if !self.discarding {
                    if self.held.len() + rest.len() > self.max_line {
                        self.held.clear();
                        self.discarding = true;
                        self.pos = self.input.len();
                        return Some(Err(DecodeError::EventTooLarge {
                            limit: self.max_line,
                        }));
                    }
                    self.held.put_slice(rest);
                }
                self.pos = self.input.len();
                continue;
            };
            let end = self.pos + newline;
            let line = if self.held.is_empty() {
                self.input.slice(self.pos..end)
            } else {
                self.held.put_slice(&self.input[self.pos..end]);
                self.held.split().freeze()
            };
            self.pos = end + 1;
            if std::mem::take(&mut self.discarding) {
                continue;
            }
            if line.len() > self.max_line {
                return Some(Err(DecodeError::EventTooLarge {
                    limit: self.max_line,
                }));
            }
            if let Some(block) = line_block(line, true) {
                return Some(Ok(block));
            }
        }
    }
}

/// A block for one line; `None` for a blank one.
fn line_block(mut line: Bytes, terminated: bool) -> Option<Block> {
    if line.last() == Some(&b'\r') {
        line.truncate(line.len() - 1);
    }
    if line.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    Some(Block::from_line(line, terminated))
}
