//! Small helpers shared by the layers' bodies.

use crate::error::BoxError;
use crate::error::error_json;
use bytes::{Buf, Bytes};
use http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};
use http_body::{Body, Frame};
use std::pin::Pin;
use std::task::{Context, Poll};

/// A raw JSON value's string (escapes decoded), if it is one: for fields kept as
/// [`RawValue`](serde_json::value::RawValue) and read only when needed.
pub(crate) fn raw_string(raw: &serde_json::value::RawValue) -> Option<std::borrow::Cow<'_, str>> {
    serde_json::from_str(raw.get()).ok()
}

/// The frame's data as `Bytes`: zero-copy when it already is `Bytes`.
pub(crate) fn to_bytes<T: Buf>(mut data: T) -> Bytes {
    data.copy_to_bytes(data.remaining())
}

/// An HTTP error response with the canonical JSON error body.
pub(crate) fn json_error_response(
    status: StatusCode,
    error_type: &str,
    code: &str,
    message: &str,
) -> Response<Bytes> {
    let body = error_json(error_type, code, message);
    let length = HeaderValue::from(body.len());
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(CONTENT_LENGTH, length);
    response
}

/// Whether a frame is only comment lines (a keep-alive), which is no upstream activity.
pub(crate) fn is_comment_only(frame: &[u8]) -> bool {
    if frame.first() != Some(&b':') {
        return false;
    }
    frame
        .split(|&b| b == b'\n')
        .all(|line| line.is_empty() || line[0] == b':')
}

/// Polls `inner` and hands its frame on with the data as `Bytes` and the error boxed: the
/// pass-through path of every body in the crate.
pub(crate) fn poll_as_bytes<B>(
    inner: Pin<&mut B>,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<Frame<Bytes>, BoxError>>>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    inner
        .poll_frame(cx)
        .map(|frame| frame.map(|f| f.map(|f| f.map_data(to_bytes)).map_err(Into::into)))
}
