//! The incremental event stream decoder.

use super::event::{Block, Event};
use bytes::{BufMut, Bytes, BytesMut};
use std::fmt;
use std::ops::Range;

/// The default [`Decoder::max_event_size`]: 16 MiB, enough for the Responses API's terminal
/// events, which carry the whole response.
pub const DEFAULT_MAX_EVENT_SIZE: usize = 16 * 1024 * 1024;

const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];
/// `Decoder::bom_matched` once the start of the stream has been decided.
const BOM_DECIDED: usize = usize::MAX;
/// A field name the decoder acts on is at most this long (`event`, `retry`).
const LONGEST_FIELD: usize = 5;

/// Why the decoder could not produce a block.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// A block grew past the decoder's maximum event size. Its bytes were discarded up to the
    /// blank line that ends it; decoding goes on after it.
    EventTooLarge {
        /// The limit in force, in bytes.
        limit: usize,
    },
    /// A binary framing (AWS event-stream) failed its checks; decoding stops.
    Corrupt {
        /// What was wrong.
        detail: String,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::EventTooLarge { limit } => {
                write!(f, "server-sent event larger than the {limit}-byte limit")
            }
            DecodeError::Corrupt { detail } => f.write_str(detail),
        }
    }
}

impl std::error::Error for DecodeError {}

/// The field values of the block being read, as ranges into the block's bytes.
#[derive(Default)]
struct PendingBlock {
    /// Block offset where the line being read starts.
    line_start: usize,
    data: PendingData,
    event_type: Option<Range<usize>>,
    retry: Option<u64>,
    has_cr: bool,
}

#[derive(Default)]
enum PendingData {
    #[default]
    None,
    /// One `data:` line so far: its value is a slice of the block, no copy needed.
    Line(Range<usize>),
    /// Several lines: joined with `\n` into their own buffer.
    Joined(BytesMut),
}

/// After an oversized block: skip input until the blank line that ends it.
struct Discarding {
    /// Input index where the line being skipped starts.
    line_start: usize,
    /// Whether the line being skipped had bytes in an earlier chunk.
    line_has_bytes: bool,
}

/// An incremental, zero-copy decoder for `text/event-stream` bytes.
///
/// It follows the WHATWG HTML "event stream interpretation" rules exactly: one leading BOM
/// removed (also when split across chunks), CRLF / LF / lone CR line endings in any mix and split
/// anywhere, comments, colon-less fields, one leading space removed from values, `id` with NUL
/// ignored and persisted across events, `retry` only when all ASCII digits, no dispatch without
/// data, invalid UTF-8 replaced by U+FFFD.
///
/// Feed it with [`push`](Self::push) and drain it with [`next_block`](Self::next_block) until
/// that returns `None`; after the last chunk call [`finish`](Self::finish) and drain once more.
/// Each [`Block`] is the exact bytes of one block of the stream (comments and id-only blocks
/// included, for pass-through); blocks with data also carry their [`Event`].
///
/// Performance: a block that arrives whole inside one chunk is a slice of that chunk, and so is
/// its single-line data; only the part of a block that straddles chunks is copied, once. Each
/// input byte is examined once by the line scanner (`memchr`), plus at most six bytes per line
/// for the field name; [`bytes_scanned`](Self::bytes_scanned) counts them. Memory is bounded by
/// [`max_event_size`](Self::max_event_size) plus the chunk being read.
///
/// ```
/// use bytes::Bytes;
/// use tower_llm_stream::sse::Decoder;
///
/// let mut decoder = Decoder::new();
/// let mut events = Vec::new();
/// for chunk in ["data: {\"a\"", ":1}\r\n\r\nevent: done\ndata: [DONE]\n", "\n"] {
///     decoder.push(Bytes::from(chunk));
///     while let Some(block) = decoder.next_block() {
///         if let Some(event) = block.unwrap().into_event() {
///             events.push(event);
///         }
///     }
/// }
/// decoder.finish();
/// assert!(decoder.next_block().is_none());
/// assert_eq!(events[0].data(), "{\"a\":1}");
/// assert_eq!(events[1].event_type(), Some("done"));
/// assert_eq!(events[1].data(), "[DONE]");
/// ```
pub struct Decoder {
    max_event_size: usize,
    /// The chunk being read.
    input: Bytes,
    /// In direct mode (`held` empty) the input index where the current block starts; in
    /// buffered mode the first input byte not yet copied into `held`.
    pos: usize,
    /// Input index where the next search for a line terminator starts.
    scan: usize,
    /// The start of the current block, carried over from earlier chunks.
    held: BytesMut,
    /// Length of the last block that straddled chunks: the capacity to reserve for the next,
    /// so a run of large events is copied once instead of through repeated doubling.
    held_hint: usize,
    block: PendingBlock,
    last_event_id: Option<Bytes>,
    /// The previous chunk ended in CR: an LF first in the next chunk belongs to it.
    skip_lf: bool,
    /// How many bytes of a leading BOM have been seen, or `BOM_DECIDED`.
    bom_matched: usize,
    discarding: Option<Discarding>,
    /// An oversized block was found while stashing; reported by the next `next_block`.
    pending_error: bool,
    finished: bool,
    bytes_scanned: u64,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

impl fmt::Debug for Decoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decoder")
            .field("max_event_size", &self.max_event_size)
            .field("held", &self.held.len())
            .field("unread", &(self.input.len() - self.scan))
            .field("finished", &self.finished)
            .finish()
    }
}

impl Decoder {
    /// A decoder with the default maximum event size ([`DEFAULT_MAX_EVENT_SIZE`]).
    #[must_use]
    pub fn new() -> Self {
        Decoder::with_max_event_size(DEFAULT_MAX_EVENT_SIZE)
    }

    /// A decoder whose blocks may hold at most `max_event_size` bytes (line terminators and
    /// comments included, the closing blank line not, the terminator of the line that crosses
    /// the limit as one byte); a larger block is reported as
    /// [`DecodeError::EventTooLarge`].
    ///
    /// ```
    /// use bytes::Bytes;
    /// use tower_llm_stream::sse::{DecodeError, Decoder};
    ///
    /// let mut decoder = Decoder::with_max_event_size(16);
    /// decoder.push(Bytes::from_static(b"data: far too long for the limit\n\ndata: ok\n\n"));
    /// assert_eq!(decoder.next_block(), Some(Err(DecodeError::EventTooLarge { limit: 16 })));
    /// let next = decoder.next_block().unwrap().unwrap();
    /// assert_eq!(next.event().unwrap().data(), "ok");
    /// ```
    #[must_use]
    pub fn with_max_event_size(max_event_size: usize) -> Self {
        Decoder {
            max_event_size,
            input: Bytes::new(),
            pos: 0,
            scan: 0,
            held: BytesMut::new(),
            held_hint: 0,
            block: PendingBlock::default(),
            last_event_id: None,
            skip_lf: false,
            bom_matched: 0,
            discarding: None,
            pending_error: false,
            finished: false,
            bytes_scanned: 0,
        }
    }

    /// The largest block this decoder accepts, in bytes.
    pub fn max_event_size(&self) -> usize {
        self.max_event_size
    }

    /// The last event id in force (set by the most recent valid `id:` field).
    pub fn last_event_id(&self) -> Option<&str> {
        self.last_event_id
            .as_deref()
            .map(|id| std::str::from_utf8(id).unwrap_or_default())
    }

    /// How many input bytes the line scanner has examined so far: a diagnostic for the
    /// linear-scan guarantee (about one per input byte, for any chunking).
    pub fn bytes_scanned(&self) -> u64 {
        self.bytes_scanned
    }

    /// How many bytes of an unfinished block are held, copied out of earlier chunks. Never more
    /// than [`max_event_size`](Self::max_event_size) + 1 (the LF of a CRLF).
    pub fn held_bytes(&self) -> usize {
        self.held.len()
    }

    /// Whether a block is partly read (bytes of it are held waiting for more input).
    pub fn has_partial_block(&self) -> bool {
        !self.held.is_empty() || self.pos < self.input.len() || self.bom_matched_partially()
    }

    fn bom_matched_partially(&self) -> bool {
        self.bom_matched != BOM_DECIDED && self.bom_matched > 0
    }

    /// Adds the next chunk of the stream.
    ///
    /// Drain [`next_block`](Self::next_block) before pushing again: that is the zero-copy path.
    /// Pushing onto unread input still works, at the cost of one copy of the unread part.
    pub fn push(&mut self, chunk: Bytes) {
        self.finished = false;
        let chunk = self.strip_bom(chunk);
        if chunk.is_empty() {
            return;
        }
        if self.scan < self.input.len() {
            let mut joined = BytesMut::with_capacity(self.input.len() - self.pos + chunk.len());
            joined.put_slice(&self.input[self.pos..]);
            joined.put_slice(&chunk);
            self.scan -= self.pos;
            if let Some(discarding) = &mut self.discarding {
                discarding.line_start = discarding.line_start.saturating_sub(self.pos);
            }
            self.pos = 0;
            self.input = joined.freeze();
        } else {
            self.stash_rest();
            self.input = chunk;
            self.pos = 0;
            self.scan = 0;
        }
    }

    /// Marks the end of the stream. Drain [`next_block`](Self::next_block) afterwards: it yields
    /// what is left and then, if the stream stopped inside a block, that block once with
    /// [`Block::is_terminated`] `false` (a conforming client drops it; a proxy can tell a
    /// truncated stream by it).
    pub fn finish(&mut self) {
        if self.bom_matched_partially() {
            // Not a BOM after all: those bytes are data.
            let held = Bytes::copy_from_slice(&BOM[..self.bom_matched]);
            self.bom_matched = BOM_DECIDED;
            self.push(held);
        }
        self.finished = true;
    }

    /// The next complete block, `None` when more input is needed (or, after
    /// [`finish`](Self::finish), when the stream is exhausted).
    #[allow(clippy::should_implement_trait)] // not an iterator: `None` means "push more".
    pub fn next_block(&mut self) -> Option<Result<Block, DecodeError>> {
        loop {
            if self.pending_error {
                self.pending_error = false;
                return Some(Err(self.too_large()));
            }
            if self.scan >= self.input.len() {
                self.stash_rest();
                if self.pending_error {
                    continue;
                }
                return if self.finished {
                    self.flush_unterminated()
                } else {
                    None
                };
            }
            if self.skip_lf {
                self.skip_lf = false;
                if self.input[self.scan] == b'\n' {
                    self.skip_crlf_tail();
                    continue;
                }
            }
            let hay = &self.input[self.scan..];
            let Some(found) = memchr::memchr2(b'\n', b'\r', hay) else {
                self.bytes_scanned += hay.len() as u64;
                self.scan = self.input.len();
                continue;
            };
            self.bytes_scanned += found as u64 + 1;
            let term = self.scan + found;
            let end = if self.input[term] == b'\r' {
                self.block.has_cr = true;
                match self.input.get(term + 1) {
                    Some(b'\n') => term + 2,
                    Some(_) => term + 1,
                    None => {
                        self.skip_lf = true;
                        term + 1
                    }
                }
            } else {
                term + 1
            };
            self.scan = end;
            if let Some(result) = self.end_line(term, end) {
                return Some(result);
            }
        }
    }

    /// The LF of a CRLF whose CR ended the previous chunk.
    fn skip_crlf_tail(&mut self) {
        self.scan += 1;
        if let Some(discarding) = &mut self.discarding {
            discarding.line_start = self.scan;
        } else if self.held.is_empty() && self.pos + 1 == self.scan {
            // The CR was a blank line that already ended its block.
            self.pos = self.scan;
        } else {
            self.block.line_start = self.offset(self.scan);
        }
    }

    /// Block offset of an input index.
    fn offset(&self, index: usize) -> usize {
        self.held.len() + index - self.pos
    }

    /// Handles the line ending at input index `term`, whose terminator ends at `end`.
    fn end_line(&mut self, term: usize, end: usize) -> Option<Result<Block, DecodeError>> {
        if let Some(discarding) = &mut self.discarding {
            let blank = !discarding.line_has_bytes && term == discarding.line_start;
            if blank {
                self.discarding = None;
                self.block = PendingBlock::default();
                self.pos = end;
            } else {
                discarding.line_start = end;
                discarding.line_has_bytes = false;
            }
            return None;
        }
        let line_end = self.offset(term);
        let block_end = self.offset(end);
        let blank = line_end == self.block.line_start;
        // This line's terminator counts as one byte, the closing blank line's not at all: a
        // CRLF split between chunks must not change the verdict.
        let size = if blank { line_end } else { line_end + 1 };
        if size > self.max_event_size {
            self.block = PendingBlock::default();
            self.held.clear();
            self.pos = end;
            if !blank {
                self.discarding = Some(Discarding {
                    line_start: end,
                    line_has_bytes: false,
                });
            }
            return Some(Err(self.too_large()));
        }
        if blank && line_end == 0 {
            // A blank line with nothing before it ends no block: consume it, yield nothing.
            self.block = PendingBlock::default();
            self.pos = end;
            return None;
        }
        let buffered = !self.held.is_empty();
        if buffered {
            self.held.put_slice(&self.input[self.pos..end]);
            self.pos = end;
        }
        if blank {
            let raw = if buffered {
                self.held_hint = self.held.len();
                self.held.split().freeze()
            } else if self.pos == 0 && end == self.input.len() {
                // The chunk is exactly this block: hand it over (no slice, no refcount).
                self.scan = 0;
                std::mem::take(&mut self.input)
            } else {
                let raw = self.input.slice(self.pos..end);
                self.pos = end;
                raw
            };
            let block = std::mem::take(&mut self.block);
            return Some(Ok(self.dispatch(raw, block, true)));
        }
        let line = self.block.line_start..line_end;
        let block_bytes: &[u8] = if buffered {
            &self.held
        } else {
            &self.input[self.pos..]
        };
        self.bytes_scanned +=
            read_field(&mut self.block, &mut self.last_event_id, block_bytes, line) as u64;
        self.block.line_start = block_end;
        None
    }

    fn too_large(&self) -> DecodeError {
        DecodeError::EventTooLarge {
            limit: self.max_event_size,
        }
    }

    /// Moves the unread rest of the chunk (part of an unfinished block) into `held`.
    fn stash_rest(&mut self) {
        let rest = self.input.len() - self.pos;
        if let Some(discarding) = &mut self.discarding {
            discarding.line_has_bytes |= self.input.len() > discarding.line_start;
            discarding.line_start = 0;
        } else if rest > 0 {
            // Only a partial line is judged here (completed lines were judged at their end):
            // that keeps the verdict independent of where chunks split.
            let size = self.held.len() + rest;
            if size > self.block.line_start && size > self.max_event_size {
                // Reported when the line ends (or at the end of the stream).
                let line_has_bytes = self.offset(self.input.len()) > self.block.line_start;
                self.held.clear();
                self.block = PendingBlock::default();
                self.discarding = Some(Discarding {
                    line_start: 0,
                    line_has_bytes,
                });
                self.pending_error = true;
            } else {
                if self.held.is_empty() {
                    self.held.reserve(rest.max(self.held_hint));
                }
                self.held.put_slice(&self.input[self.pos..]);
            }
        }
        self.input = Bytes::new();
        self.pos = 0;
        self.scan = 0;
    }

    /// At the end of the stream: the unfinished block, if any, as an unterminated block.
    fn flush_unterminated(&mut self) -> Option<Result<Block, DecodeError>> {
        if self.discarding.take().is_some() {
            self.block = PendingBlock::default();
            return None;
        }
        if self.held.is_empty() {
            return None;
        }
        let line = self.block.line_start..self.held.len();
        if !line.is_empty() {
            self.bytes_scanned +=
                read_field(&mut self.block, &mut self.last_event_id, &self.held, line) as u64;
        }
        let raw = self.held.split().freeze();
        let block = std::mem::take(&mut self.block);
        Some(Ok(self.dispatch(raw, block, false)))
    }

    fn dispatch(&self, raw: Bytes, block: PendingBlock, terminated: bool) -> Block {
        // simdutf8: SIMD where the CPU has it (detected at run time), cheaper on every event
        // than the standard library's check (BENCHMARKS.md).
        let valid_utf8 = simdutf8::basic::from_utf8(&raw).is_ok();
        let text = |bytes: Bytes| {
            if valid_utf8 { bytes } else { lossy(bytes) }
        };
        let data = match block.data {
            PendingData::None => None,
            PendingData::Line(range) => Some(raw.slice(range)),
            PendingData::Joined(joined) => Some(joined.freeze()),
        };
        let event = data.map(|data| Event {
            event_type: block.event_type.map(|range| text(raw.slice(range))),
            data: text(data),
            id: self.last_event_id.clone(),
            retry: block.retry,
        });
        Block {
            raw,
            has_cr: block.has_cr,
            valid_utf8,
            terminated,
            event,
        }
    }

    /// Removes a leading BOM; holds a partial one until it can be decided.
    fn strip_bom(&mut self, chunk: Bytes) -> Bytes {
        if self.bom_matched == BOM_DECIDED {
            return chunk;
        }
        let mut i = 0;
        while self.bom_matched < BOM.len() && i < chunk.len() && chunk[i] == BOM[self.bom_matched] {
            self.bom_matched += 1;
            i += 1;
        }
        if self.bom_matched == BOM.len() {
            self.bom_matched = BOM_DECIDED;
            return chunk.slice(i..);
        }
        if i == chunk.len() {
            return Bytes::new(); // all of it may still be a BOM
        }
        let earlier = self.bom_matched - i;
        self.bom_matched = BOM_DECIDED;
        if earlier == 0 {
            return chunk;
        }
        let mut joined = BytesMut::with_capacity(earlier + chunk.len());
        joined.put_slice(&BOM[..earlier]);
        joined.put_slice(&chunk);
        joined.freeze()
    }
}

/// Applies one non-blank line to the pending block. Returns how many bytes it examined.
fn read_field(
    block: &mut PendingBlock,
    last_event_id: &mut Option<Bytes>,
    bytes: &[u8],
    line: Range<usize>,
) -> usize {
    let text = &bytes[line.clone()];
    if text[0] == b':' {
        return 1; // comment
    }
    let probe = &text[..text.len().min(LONGEST_FIELD + 1)];
    let (name, value_start) = match probe.iter().position(|&b| b == b':') {
        Some(colon) => {
            let space = usize::from(text.get(colon + 1) == Some(&b' '));
            (&text[..colon], colon + 1 + space)
        }
        None if text.len() <= LONGEST_FIELD => (text, text.len()),
        None => return probe.len(), // a longer, unknown field name
    };
    let value = line.start + value_start..line.end;
    match name {
        b"data" => {
            block.data = match std::mem::take(&mut block.data) {
                PendingData::None => PendingData::Line(value),
                PendingData::Line(first) => {
                    let mut joined = BytesMut::with_capacity((first.len() + value.len()) * 2 + 1);
                    joined.put_slice(&bytes[first]);
                    joined.put_u8(b'\n');
                    joined.put_slice(&bytes[value]);
                    PendingData::Joined(joined)
                }
                PendingData::Joined(mut joined) => {
                    joined.put_u8(b'\n');
                    joined.put_slice(&bytes[value]);
                    PendingData::Joined(joined)
                }
            }
        }
        b"event" => block.event_type = Some(value),
        b"id" => {
            let id = &bytes[value];
            if memchr::memchr(0, id).is_none() {
                *last_event_id = Some(lossy(Bytes::copy_from_slice(id)));
            }
        }
        b"retry" => {
            let digits = &bytes[value];
            if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) {
                block.retry = Some(digits.iter().fold(0u64, |n, d| {
                    n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
                }));
            }
        }
        _ => {}
    }
    probe.len()
}

/// The bytes with invalid UTF-8 replaced by U+FFFD (no copy when they are valid).
fn lossy(bytes: Bytes) -> Bytes {
    match String::from_utf8_lossy(&bytes) {
        std::borrow::Cow::Borrowed(_) => bytes,
        std::borrow::Cow::Owned(text) => Bytes::from(text),
    }
}
