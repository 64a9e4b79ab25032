//! The `text/event-stream` wire format, with no I/O: an incremental [`Decoder`] (bytes in,
//! [`Block`]s and [`Event`]s out) and an encoder for canonical frames.
//!
//! Everything else in this crate stands on it. Decoding follows the WHATWG HTML "event stream
//! interpretation" rules exactly; blocks that dispatch no event (comments, id-only and
//! retry-only blocks) are yielded too, so a proxy loses nothing.
//!
//! ```
//! use bytes::{Bytes, BytesMut};
//! use tower_llm_stream::sse::{encode_event, Decoder};
//!
//! // Decode a CRLF stream split at awkward places, and re-encode it canonically.
//! let mut decoder = Decoder::new();
//! let mut out = BytesMut::new();
//! for chunk in ["\u{FEFF}event: a\r", "\ndata: 1\r\n\r", "\n"] {
//!     decoder.push(Bytes::from(chunk));
//!     while let Some(block) = decoder.next_block() {
//!         if let Some(event) = block.unwrap().event() {
//!             encode_event(event, &mut out).unwrap();
//!         }
//!     }
//! }
//! assert_eq!(&out[..], b"event: a\ndata: 1\n\n");
//! ```

mod decoder;
mod encoder;
mod event;
mod media;

pub use decoder::{DEFAULT_MAX_EVENT_SIZE, DecodeError, Decoder};
pub use encoder::{EncodeError, encode_comment, encode_data, encode_event};
pub use event::{Block, Event};
pub use media::is_event_stream;
pub(crate) use media::{is_aws_event_stream, is_ndjson};
