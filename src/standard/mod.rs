//! The standard stream: the hub every other module reads from or writes to.
//!
//! Whatever an upstream speaks, the layers hand the client one stream, made of **frames**:
//! each frame one whole SSE block (an event, or a comment block such as `: keep-alive`) with
//! LF line endings, an `event:` line first when the event is typed, then its `data:` line(s),
//! then a blank line. Its contract (the repository's `ARCHITECTURE.md` has the whole of it):
//!
//! - **Chat and text completions**: OpenAI `chat.completion.chunk` / `text_completion`
//!   chunks as untyped `data:` events. Usage and finish reasons only in the **last chunk**
//!   (every choice with an empty delta and its reason, `usage` when the upstream reported
//!   any, never invented), then `data: [DONE]` ([`DONE_FRAME`]).
//! - **Responses API**: typed events with gapless `sequence_number`s, usage only in the
//!   terminal event (`response.completed`, `response.incomplete`, `response.failed`).
//! - **Audio**: speech (`speech.audio.delta` / `.done`) and transcription
//!   (`transcript.text.delta` / `.done`) events, usage in their `.done` event.
//! - **Errors are events**: `data: {"error":{"type","code","message"}}` ([`error_frame`]), in
//!   a Responses stream `event: error` with the next `sequence_number`
//!   ([`responses_error_frame`]); nothing follows an error event (but `response.failed` in a
//!   Responses stream), and never a body `Err` after it.
//!
//! This module holds the stream's one **writer** ([`write`](mod@write): JSON strings, the error object
//! and frames, chunks, `[DONE]`), its one **reader** of frames ([`frame`]: done, error,
//! terminal, sequence numbers, comments), its one probe mechanism (`Needles`,
//! crate-internal) and its typed events ([`events`]) for applications that want to read it.
//! It depends on [`sse`](crate::sse) only; the dialects, the layers and the provider module
//! depend on it.

pub mod events;
pub mod frame;
pub(crate) mod json;
pub(crate) mod probe;
pub mod report;
pub mod write;

pub use self::write::{
    ChatChunkWriter, DONE_FRAME, data_frame, error_frame, error_json, finish_reason_for_stop,
    json_string, responses_error_frame,
};

use bytes::Bytes;
use std::collections::VecDeque;

/// A queue of standard frames, in order: what a [`Dialect`](crate::dialect::Dialect)
/// produces from one upstream block, and what the usage normalizer hands on. The queue is reused across events, so pushing
/// allocates nothing once it has grown to the largest expansion of one event.
#[derive(Debug, Default)]
pub struct Frames {
    queue: VecDeque<Bytes>,
}

impl Frames {
    /// An empty queue.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use tower_llm_stream::standard::Frames;
    ///
    /// let mut frames = Frames::new();
    /// frames.push(Bytes::from_static(b"data: [DONE]\n\n"));
    /// assert_eq!(frames.len(), 1);
    /// assert_eq!(frames.pop().as_deref(), Some(&b"data: [DONE]\n\n"[..]));
    /// assert!(frames.is_empty());
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Frames::default()
    }

    /// Appends one frame (one whole canonical block).
    pub fn push(&mut self, frame: Bytes) {
        self.queue.push_back(frame);
    }

    /// Takes the oldest frame.
    pub fn pop(&mut self) -> Option<Bytes> {
        self.queue.pop_front()
    }

    /// How many frames wait.
    #[must_use]
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether no frame waits.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}
