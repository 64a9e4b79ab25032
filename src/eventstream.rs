//! The AWS event-stream binary framing (`application/vnd.amazon.eventstream`, Bedrock's
//! ConverseStream), yielding the same [`Block`]s as the SSE decoder: the `:event-type` header
//! as the event type, the payload as the data.

use crate::sse::{Block, DecodeError};
use bytes::{Buf, BufMut, Bytes, BytesMut};

/// CRC-32 (IEEE), as the framing's prelude and message checksums use it.
const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

fn crc32(bytes: &[u8]) -> u32 {
    !bytes.iter().fold(!0u32, |crc, &b| {
        CRC_TABLE[((crc ^ u32::from(b)) & 0xFF) as usize] ^ (crc >> 8)
    })
}

/// An incremental decoder for AWS event-stream messages.
///
/// Each message: total length and headers length (big-endian `u32`), the prelude's CRC-32,
/// the headers, the payload, the message's CRC-32. Both checksums are verified; a bad one, a
/// malformed header or an impossible length is [`DecodeError::Corrupt`] and ends decoding (a
/// binary stream cannot resynchronise). A message longer than the limit is
/// [`DecodeError::EventTooLarge`]. Exceptions (`:message-type` `exception`) come out with the
/// event type `exception:<:exception-type>`.
///
/// ```
/// use bytes::Bytes;
/// use tower_llm_stream::eventstream::{encode_message, EventStreamDecoder};
///
/// let message = encode_message("contentBlockDelta", br#"{"delta":{"text":"Hi"}}"#);
/// let mut decoder = EventStreamDecoder::new(1 << 20);
/// decoder.push(message.slice(..10));
/// assert!(decoder.next_block().is_none());
/// decoder.push(message.slice(10..));
/// let block = decoder.next_block().unwrap().unwrap();
/// let event = block.event().unwrap();
/// assert_eq!(event.event_type(), Some("contentBlockDelta"));
/// assert_eq!(event.data(), r#"{"delta":{"text":"Hi"}}"#);
/// ```
#[derive(Debug)]
pub struct EventStreamDecoder {
    max_message: usize,
    buffer: BytesMut,
    failed: bool,
    finished: bool,
}

impl EventStreamDecoder {
    /// A decoder accepting messages of at most `max_message` bytes.
    #[must_use]
    pub fn new(max_message: usize) -> Self {
        EventStreamDecoder {
            max_message,
            buffer: BytesMut::new(),
            failed: false,
            finished: false,
        }
    }

    /// Adds the next chunk.
    pub fn push(&mut self, chunk: Bytes) {
        if !self.failed {
            self.buffer.put_slice(&chunk);
        }
    }

    /// Marks the end of the stream: leftover bytes come out as an unterminated block.
    pub fn finish(&mut self) {
        self.finished = true;
    }

    /// The next message, `None` when more input is needed or the stream is exhausted.
    #[allow(clippy::should_implement_trait)]
    pub fn next_block(&mut self) -> Option<Result<Block, DecodeError>> {
        if self.failed {
            return None;
        }
        if self.buffer.len() < 12 {
            return self.leftover();
        }
        let total = u32::from_be_bytes([
            self.buffer[0],
            self.buffer[1],
            self.buffer[2],
            self.buffer[3],
        ]) as usize;
        let headers_len = u32::from_be_bytes([
            self.buffer[4],
            self.buffer[5],
            self.buffer[6],
            self.buffer[7],
        ]) as usize;
        let prelude_crc = u32::from_be_bytes([
            self.buffer[8],
            self.buffer[9],
            self.buffer[10],
            self.buffer[11],
        ]);
        if crc32(&self.buffer[..8]) != prelude_crc {
            return self.fail("prelude checksum mismatch");
        }
        if total < 16 || headers_len > total - 16 {
            return self.fail("impossible message lengths");
        }
        if total > self.max_message {
            self.failed = true;
            self.buffer.clear();
            return Some(Err(DecodeError::EventTooLarge {
                limit: self.max_message,
            }));
        }
        if self.buffer.len() < total {
            self.buffer.reserve(total - self.buffer.len());
            return self.leftover();
        }
        let message = self.buffer.split_to(total).freeze();
        let message_crc = u32::from_be_bytes([
            message[total - 4],
            message[total - 3],
            message[total - 2],
            message[total - 1],
        ]);
        if crc32(&message[..total - 4]) != message_crc {
            return self.fail("message checksum mismatch");
        }
        let headers = parse_headers(&message[12..12 + headers_len]);
        let Some(headers) = headers else {
            return self.fail("malformed headers");
        };
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        let event_type = match header(":message-type") {
            Some("exception" | "error") => {
                let kind = header(":exception-type")
                    .or(header(":error-code"))
                    .unwrap_or("unknown");
                format!("exception:{kind}")
            }
            _ => header(":event-type").unwrap_or("unknown").to_owned(),
        };
        let payload = message.slice(12 + headers_len..total - 4);
        Some(Ok(Block::from_typed(event_type, payload, true)))
    }

    fn leftover(&mut self) -> Option<Result<Block, DecodeError>> {
        if self.finished && !self.buffer.is_empty() {
            let rest = self.buffer.split().freeze();
            return Some(Ok(Block::from_typed("partial".to_owned(), rest, false)));
        }
        None
    }

    fn fail(&mut self, detail: &str) -> Option<Result<Block, DecodeError>> {
        self.failed = true;
        self.buffer.clear();
        Some(Err(DecodeError::Corrupt {
            detail: format!("AWS event-stream: {detail}"),
        }))
    }
}

/// The string-valued headers (others are skipped by their declared sizes).
fn parse_headers(mut bytes: &[u8]) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    while bytes.has_remaining() {
        let name_len = usize::from(*bytes.first()?);
        bytes.advance(1);
        let name = String::from_utf8_lossy(bytes.get(..name_len)?).into_owned();
        bytes.advance(name_len);
        let kind = *bytes.first()?;
        bytes.advance(1);
        let fixed = match kind {
            0 | 1 => 0,
            2 => 1,
            3 => 2,
            4 => 4,
            5 | 8 => 8,
            9 => 16,
            6 | 7 => {
                let len = usize::from(u16::from_be_bytes([*bytes.first()?, *bytes.get(1)?]));
                bytes.advance(2);
                let value = bytes.get(..len)?;
                if kind == 7 {
                    out.push((name, String::from_utf8_lossy(value).into_owned()));
                }
                bytes.advance(len);
                continue;
            }
            _ => return None,
        };
        if bytes.len() < fixed {
            return None;
        }
        bytes.advance(fixed);
    }
    Some(out)
}

/// One event-stream message with string headers `:event-type` = `event_type`,
/// `:content-type` = `application/json`, `:message-type` = `event`: for tests and mock
/// upstreams.
#[must_use]
pub fn encode_message(event_type: &str, payload: &[u8]) -> Bytes {
    let mut headers = BytesMut::new();
    for (name, value) in [
        (":event-type", event_type),
        (":content-type", "application/json"),
        (":message-type", "event"),
    ] {
        headers.put_u8(name.len() as u8);
        headers.put_slice(name.as_bytes());
        headers.put_u8(7);
        headers.put_u16(value.len() as u16);
        headers.put_slice(value.as_bytes());
    }
    let total = 16 + headers.len() + payload.len();
    let mut out = BytesMut::with_capacity(total);
    out.put_u32(total as u32);
    out.put_u32(headers.len() as u32);
    out.put_u32(crc32(&out[..8]));
    out.put_slice(&headers);
    out.put_slice(payload);
    out.put_u32(crc32(&out));
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }
}
