//! Which framing a response's `Content-Type` announces.

use http::HeaderMap;
use http::header::CONTENT_TYPE;

/// Whether the headers announce a `text/event-stream` body (parameters and case ignored):
/// the test the reframer applies, for code that handles streams and other bodies apart.
///
/// ```
/// use tower_llm_stream::sse::is_event_stream;
///
/// let mut headers = http::HeaderMap::new();
/// headers.insert("content-type", "Text/Event-Stream; charset=utf-8".parse().unwrap());
/// assert!(is_event_stream(&headers));
/// headers.insert("content-type", "application/json".parse().unwrap());
/// assert!(!is_event_stream(&headers));
/// ```
#[must_use]
pub fn is_event_stream(headers: &HeaderMap) -> bool {
    media_type(headers).is_some_and(|mime| mime.eq_ignore_ascii_case("text/event-stream"))
}

/// Whether the headers announce newline-delimited JSON.
pub(crate) fn is_ndjson(headers: &HeaderMap) -> bool {
    media_type(headers).is_some_and(|mime| {
        mime.eq_ignore_ascii_case("application/x-ndjson")
            || mime.eq_ignore_ascii_case("application/ndjson")
    })
}

/// Whether the headers announce an AWS event-stream.
pub(crate) fn is_aws_event_stream(headers: &HeaderMap) -> bool {
    media_type(headers)
        .is_some_and(|mime| mime.eq_ignore_ascii_case("application/vnd.amazon.eventstream"))
}

/// The media type of the headers' content type, without parameters.
fn media_type(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(str::trim)
}
