//! Small helpers shared by the layers' bodies.

use crate::error::BoxError;
use crate::standard::error_json;
use bytes::{Buf, Bytes};
use http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};
use http_body::{Body, Frame};
use std::pin::Pin;
use std::task::{Context, Poll};

/// The frame's data as `Bytes`: zero-copy when it already is `Bytes`.
pub(crate) fn to_bytes<T: Buf>(mut data: T) -> Bytes {
    data.copy_to_bytes(data.remaining())
}

/// An HTTP error response with the standard JSON error body.
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
