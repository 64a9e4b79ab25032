//! Typed stream errors and their OpenAI-style rendering.
//!
//! Bodies produced by this crate's layers fail with a [`BoxError`]; when the failure is one the
//! crate knows, the box holds a [`StreamError`], whose [`code`](StreamError::code) is stable and
//! is what [`ErrorEventLayer`](crate::error_event::ErrorEventLayer) puts in the error event:
//!
//! | error | `type` | `code` |
//! |---|---|---|
//! | no event for the idle timeout | `timeout_error` | `stream_idle_timeout` |
//! | total deadline passed | `timeout_error` | `stream_deadline` |
//! | upstream event over the size limit | `upstream_error` | `event_too_large` |
//! | upstream ended mid-event or without its terminator | `upstream_error` | `stream_truncated` |
//! | upstream event not in the expected format | `upstream_error` | `malformed_event` |
//! | upstream body failed (reset, I/O error) | `upstream_error` | `upstream_body_error` |
//! | the server is shutting down ([`Shutdown`](crate::timeout::Shutdown)) | `server_error` | `server_shutting_down` |
//!
//! Before the response head the same shape is the body of an HTTP error response
//! ([`error_json`](crate::standard::error_json)): `{"error":{"type":…,"code":…,"message":…}}`.

use std::fmt;
use std::time::Duration;

/// The error type of the bodies in this crate, as in tower-http.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A failure of an event stream after the response head was sent.
#[derive(Debug)]
#[non_exhaustive]
pub enum StreamError {
    /// No event arrived from the upstream within the idle timeout.
    IdleTimeout {
        /// The idle timeout in force.
        idle: Duration,
    },
    /// The stream's total deadline passed.
    Deadline {
        /// The total deadline in force.
        total: Duration,
    },
    /// An upstream event was larger than the decoder's limit.
    EventTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The upstream ended inside an event, or without the event that marks its end.
    Truncated {
        /// What was missing.
        detail: &'static str,
    },
    /// An upstream event was not in the format its dialect requires.
    MalformedEvent {
        /// What was wrong.
        detail: String,
    },
    /// The upstream body failed (connection reset, I/O error, …).
    Upstream(BoxError),
    /// The server is shutting down and ended the stream
    /// ([`Shutdown`](crate::timeout::Shutdown)).
    ShuttingDown,
}

impl StreamError {
    /// The stable error code put in the error event.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_llm_stream::StreamError;
    ///
    /// let err = StreamError::IdleTimeout { idle: Duration::from_secs(30) };
    /// assert_eq!(err.code(), "stream_idle_timeout");
    /// assert_eq!(err.error_type(), "timeout_error");
    /// ```
    #[must_use]
    pub fn code(&self) -> &str {
        match self {
            StreamError::IdleTimeout { .. } => "stream_idle_timeout",
            StreamError::Deadline { .. } => "stream_deadline",
            StreamError::EventTooLarge { .. } => "event_too_large",
            StreamError::Truncated { .. } => "stream_truncated",
            StreamError::MalformedEvent { .. } => "malformed_event",
            StreamError::Upstream(_) => "upstream_body_error",
            StreamError::ShuttingDown => "server_shutting_down",
        }
    }

    /// The error type put in the error event.
    #[must_use]
    pub fn error_type(&self) -> &str {
        match self {
            StreamError::IdleTimeout { .. } | StreamError::Deadline { .. } => "timeout_error",
            StreamError::ShuttingDown => "server_error",
            _ => "upstream_error",
        }
    }

    /// Whether this is one of the timeouts.
    #[must_use]
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            StreamError::IdleTimeout { .. } | StreamError::Deadline { .. }
        )
    }
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamError::IdleTimeout { idle } => {
                write!(f, "no event from the upstream for {}", seconds(*idle))
            }
            StreamError::Deadline { total } => {
                write!(f, "the stream exceeded its {} deadline", seconds(*total))
            }
            StreamError::EventTooLarge { limit } => {
                write!(f, "an upstream event exceeded the {limit}-byte limit")
            }
            StreamError::Truncated { detail } => {
                write!(f, "the upstream stream was cut off: {detail}")
            }
            StreamError::MalformedEvent { detail } => {
                write!(f, "malformed upstream event: {detail}")
            }
            StreamError::Upstream(err) => write!(f, "the upstream connection failed: {err}"),
            StreamError::ShuttingDown => {
                f.write_str("the server is shutting down: send the request again")
            }
        }
    }
}

impl std::error::Error for StreamError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StreamError::Upstream(err) => Some(&**err),
            _ => None,
        }
    }
}

/// The longest text a log field takes from an upstream or a client (bytes).
pub(crate) const LOG_FIELD_MAX: usize = 1024;

/// `text` cut to [`LOG_FIELD_MAX`] bytes at a character boundary: log fields that carry an
/// upstream's or a client's words stay one readable line.
pub(crate) fn log_field(text: &str) -> &str {
    if text.len() <= LOG_FIELD_MAX {
        return text;
    }
    let mut end = LOG_FIELD_MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

pub(crate) fn seconds(duration: Duration) -> String {
    let secs = duration.as_secs_f64();
    if secs.fract() == 0.0 {
        format!("{secs:.0}s")
    } else {
        format!("{secs}s")
    }
}

/// Finds the [`StreamError`] in an error or its chain of sources.
pub fn find_stream_error<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a StreamError> {
    let mut current = Some(err);
    while let Some(err) = current {
        if let Some(found) = err.downcast_ref::<StreamError>() {
            return Some(found);
        }
        current = err.source();
    }
    None
}

/// `(type, code, message)` for any body error: a [`StreamError`]'s own, else an upstream
/// body error with the error's message.
pub(crate) fn describe(err: &(dyn std::error::Error + 'static)) -> (String, String, String) {
    match find_stream_error(err) {
        Some(StreamError::Upstream(inner)) => (
            "upstream_error".into(),
            "upstream_body_error".into(),
            format!("the upstream connection failed: {}", chain(&**inner)),
        ),
        Some(found) => (
            found.error_type().into(),
            found.code().into(),
            found.to_string(),
        ),
        None => (
            "upstream_error".into(),
            "upstream_body_error".into(),
            format!("the upstream connection failed: {}", chain(err)),
        ),
    }
}

/// An error and its sources, joined with `: `.
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        let part = inner.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_fields_are_cut_at_a_character_boundary() {
        assert_eq!(log_field("short"), "short");
        let long = "é".repeat(LOG_FIELD_MAX);
        let cut = log_field(&long);
        assert!(cut.len() <= LOG_FIELD_MAX && cut.len() >= LOG_FIELD_MAX - 1);
        assert!(long.starts_with(cut));
    }
}
