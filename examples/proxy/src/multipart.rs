//! Transcription uploads (`multipart/form-data`) streamed upstream: the proxy reads only as far
//! as the `model` field, rewrites its value (`openai/whisper-1` → `whisper-1`), and streams
//! the rest of the upload through untouched. Clients usually send `model` before the file; if
//! the file comes first, it is held until `model` arrives (within the upload limit).

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use memchr::memmem;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tower_llm_stream::BoxError;

/// The boundary of a `multipart/form-data` content type.
pub fn boundary(content_type: &str) -> Option<&str> {
    let (mime, params) = content_type.split_once(';')?;
    if !mime.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.split(';').find_map(|param| {
        let (key, value) = param.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| value.trim().trim_matches('"'))
            .filter(|b| !b.is_empty() && b.len() <= 70)
    })
}

/// Why a form cannot be forwarded.
#[derive(Debug, PartialEq, Eq)]
pub enum FormError {
    /// The form ended and had no such field.
    Missing,
    /// Not the multipart syntax.
    Malformed(&'static str),
}

/// Finds one field's value in a growing prefix of a form, scanning each byte about once.
pub struct FieldFinder {
    /// `--boundary`
    dash_boundary: Vec<u8>,
    /// `\r\n--boundary`
    delimiter: Vec<u8>,
    field: &'static str,
    /// Where the current part's `--boundary` starts, once found.
    part: Option<usize>,
    /// Where to resume searching.
    search_from: usize,
}

const MAX_PART_HEADERS: usize = 16 * 1024;

impl FieldFinder {
    pub fn new(boundary: &str, field: &'static str) -> Self {
        FieldFinder {
            dash_boundary: format!("--{boundary}").into_bytes(),
            delimiter: format!("\r\n--{boundary}").into_bytes(),
            field,
            part: None,
            search_from: 0,
        }
    }

    /// The field value's byte range in `buf` once it is complete, `None` while more of the form
    /// is needed.
    pub fn poll(&mut self, buf: &[u8]) -> Result<Option<(usize, usize)>, FormError> {
        let part = match self.part {
            Some(part) => part,
            None => match memmem::find(&buf[self.search_from..], &self.dash_boundary) {
                Some(at) => {
                    let part = self.search_from + at;
                    self.part = Some(part);
                    self.search_from = part;
                    part
                }
                None => {
                    self.search_from = buf.len().saturating_sub(self.dash_boundary.len());
                    return Ok(None);
                }
            },
        };
        let mut part = part;
        loop {
            let after = part + self.dash_boundary.len();
            if buf.len() < after + 2 {
                return Ok(None);
            }
            match &buf[after..after + 2] {
                b"--" => return Err(FormError::Missing),
                b"\r\n" => {}
                _ => return Err(FormError::Malformed("a boundary line must end in CRLF")),
            }
            let headers_start = after + 2;
            let Some(headers_len) = memmem::find(&buf[headers_start..], b"\r\n\r\n") else {
                if buf.len() - headers_start > MAX_PART_HEADERS {
                    return Err(FormError::Malformed("part headers are too long"));
                }
                return Ok(None);
            };
            let headers = &buf[headers_start..headers_start + headers_len];
            let value_start = headers_start + headers_len + 4;
            let from = self.search_from.max(value_start);
            let Some(at) = memmem::find(&buf[from..], &self.delimiter) else {
                self.search_from = buf
                    .len()
                    .saturating_sub(self.delimiter.len())
                    .max(value_start);
                return Ok(None);
            };
            let value_end = from + at;
            if names(headers, self.field) {
                return Ok(Some((value_start, value_end)));
            }
            part = value_end + 2;
            self.part = Some(part);
            self.search_from = part;
        }
    }
}

/// Whether a part's headers say `Content-Disposition: form-data; name="<field>"`.
fn names(headers: &[u8], field: &str) -> bool {
    let Ok(headers) = std::str::from_utf8(headers) else {
        return false;
    };
    headers.split("\r\n").any(|line| {
        let Some((name, value)) = line.split_once(':') else {
            return false;
        };
        name.trim().eq_ignore_ascii_case("content-disposition")
            && value.split(';').skip(1).any(|param| {
                param.split_once('=').is_some_and(|(k, v)| {
                    k.trim().eq_ignore_ascii_case("name") && v.trim().trim_matches('"') == field
                })
            })
    })
}

/// `prefix` (the rewritten head of the form), then the rest of the client's upload, no more
/// than `budget` bytes of it.
pub struct PrefixedBody<B> {
    prefix: Option<Bytes>,
    rest: Pin<Box<B>>,
    budget: u64,
}

impl<B> PrefixedBody<B> {
    pub fn new(prefix: BytesMut, rest: B, budget: u64) -> Self {
        PrefixedBody {
            prefix: Some(prefix.freeze()),
            rest: Box::pin(rest),
            budget,
        }
    }
}

/// The upload went over the limit while it was streamed.
#[derive(Debug)]
pub struct UploadTooLarge(pub u64);

impl std::fmt::Display for UploadTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the upload is larger than the proxy's limit of {} bytes",
            self.0
        )
    }
}

impl std::error::Error for UploadTooLarge {}

impl<B> Body for PrefixedBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(prefix) = self.prefix.take() {
            return Poll::Ready(Some(Ok(Frame::data(prefix))));
        }
        let frame = ready!(self.rest.as_mut().poll_frame(cx));
        Poll::Ready(match frame {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    let len = data.len() as u64;
                    if len > self.budget {
                        return Poll::Ready(Some(Err(Box::new(UploadTooLarge(self.budget)))));
                    }
                    self.budget -= len;
                }
                Some(Ok(frame))
            }
            Some(Err(e)) => Some(Err(e.into())),
            None => None,
        })
    }

    fn is_end_stream(&self) -> bool {
        self.prefix.is_none() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let rest = self.rest.size_hint();
        let extra = self.prefix.as_ref().map_or(0, |p| p.len() as u64);
        let mut hint = SizeHint::new();
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper + extra);
        }
        hint.set_lower(rest.lower() + extra);
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORM: &[u8] = b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"model\"\r\nContent-Type: audio/wav\r\n\r\nRIFF....\r\n--XyZ\r\ncontent-disposition: form-data; name=\"model\"\r\n\r\nopenai/whisper-1\r\n--XyZ\r\nContent-Disposition: form-data; name=\"stream\"\r\n\r\ntrue\r\n--XyZ--\r\n";

    #[test]
    fn boundaries() {
        assert_eq!(boundary("multipart/form-data; boundary=XyZ"), Some("XyZ"));
        assert_eq!(
            boundary("Multipart/Form-Data; charset=utf-8; boundary=\"a b\""),
            Some("a b")
        );
        assert_eq!(boundary("application/json"), None);
        assert_eq!(boundary("multipart/form-data"), None);
    }

    #[test]
    fn finds_the_field_whatever_the_chunking() {
        let expected = {
            let at = memmem::find(FORM, b"openai/whisper-1").unwrap();
            (at, at + "openai/whisper-1".len())
        };
        for step in 1..FORM.len() {
            let mut finder = FieldFinder::new("XyZ", "model");
            let mut found = None;
            for end in (step..FORM.len() + step).step_by(step) {
                if let Some(range) = finder.poll(&FORM[..end.min(FORM.len())]).unwrap() {
                    found = Some(range);
                    break;
                }
            }
            assert_eq!(found, Some(expected), "step {step}");
        }
    }

    #[test]
    fn a_form_without_the_field() {
        let mut finder = FieldFinder::new("XyZ", "language");
        assert_eq!(finder.poll(FORM), Err(FormError::Missing));
        let mut finder = FieldFinder::new("XyZ", "model");
        assert!(matches!(
            finder.poll(b"--XyZ garbage"),
            Err(FormError::Malformed(_))
        ));
    }
}
