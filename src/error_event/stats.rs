//! The per-stream `tracing` span and what is recorded into it when the stream ends.

use http::StatusCode;
use std::borrow::Cow;
use tokio::time::Instant;
use tracing::Span;
use tracing::field::Empty;

/// Labels for a stream's span, taken from a request extension, or a response extension (for
/// handlers that learn the provider and model from the body), when present: the layers do
/// not parse requests.
///
/// ```
/// use tower_llm_stream::error_event::StreamLabels;
///
/// let mut request = http::Request::new(());
/// request.extensions_mut().insert(StreamLabels::new("anthropic", "claude-sonnet-4-5"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamLabels {
    /// The provider (`gen_ai.system`), e.g. `openai`.
    pub system: Cow<'static, str>,
    /// The requested model (`gen_ai.request.model`).
    pub model: Cow<'static, str>,
}

impl StreamLabels {
    /// Labels for a provider and model.
    pub fn new(system: impl Into<Cow<'static, str>>, model: impl Into<Cow<'static, str>>) -> Self {
        StreamLabels {
            system: system.into(),
            model: model.into(),
        }
    }
}

pub(crate) fn request_span(labels: Option<&StreamLabels>) -> Span {
    let span = tracing::info_span!(
        "llm_stream",
        gen_ai.system = Empty,
        gen_ai.request.model = Empty,
        gen_ai.response.finish_reasons = Empty,
        gen_ai.usage.input_tokens = Empty,
        gen_ai.usage.output_tokens = Empty,
        http.response.status_code = Empty,
        time_to_first_event_ms = Empty,
        events = Empty,
        bytes = Empty,
        duration_ms = Empty,
        outcome = Empty,
        error.code = Empty,
    );
    if let Some(labels) = labels {
        span.record("gen_ai.system", &*labels.system);
        span.record("gen_ai.request.model", &*labels.model);
    }
    span
}

/// Counters of one stream; recorded into its span once, when the stream ends or is dropped.
pub(crate) struct StreamStats {
    pub(crate) span: Span,
    started: Instant,
    first_event: Option<Instant>,
    events: u64,
    bytes: u64,
    outcome: Option<(&'static str, Option<String>)>,
}

impl StreamStats {
    pub(crate) fn new(span: Span, started: Instant, status: StatusCode) -> Self {
        span.record("http.response.status_code", status.as_u16());
        StreamStats {
            span,
            started,
            first_event: None,
            events: 0,
            bytes: 0,
            outcome: None,
        }
    }

    /// Records usage and finish reasons from a frame that carries them (the standard stream
    /// has them once: in its last chunk, or in the Responses terminal event). Parses only
    /// those frames.
    pub(crate) fn outcome_frame(&mut self, frame: &[u8]) {
        let Some(data) = frame
            .split(|&b| b == b'\n')
            .find_map(|line| line.strip_prefix(b"data: "))
        else {
            return;
        };
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
            return;
        };
        // Chat chunks carry `usage`; Responses terminal events `response.usage`.
        let usage = value.get("usage").filter(|u| u.is_object()).or_else(|| {
            value
                .get("response")
                .and_then(|r| r.get("usage"))
                .filter(|u| u.is_object())
        });
        if let Some(usage) = usage {
            let input = usage
                .get("prompt_tokens")
                .or_else(|| usage.get("input_tokens"));
            let output = usage
                .get("completion_tokens")
                .or_else(|| usage.get("output_tokens"));
            if let Some(n) = input.and_then(serde_json::Value::as_u64) {
                self.span.record("gen_ai.usage.input_tokens", n);
            }
            if let Some(n) = output.and_then(serde_json::Value::as_u64) {
                self.span.record("gen_ai.usage.output_tokens", n);
            }
        }
        let reasons: Vec<&str> = value
            .get("choices")
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| c.get("finish_reason").and_then(serde_json::Value::as_str))
            .collect();
        let status = value
            .get("response")
            .and_then(|r| r.get("status"))
            .and_then(serde_json::Value::as_str);
        if !reasons.is_empty() {
            self.span.record(
                "gen_ai.response.finish_reasons",
                format!("{reasons:?}").as_str(),
            );
        } else if let Some(status) = status.filter(|s| *s != "in_progress") {
            self.span.record(
                "gen_ai.response.finish_reasons",
                format!("[{status:?}]").as_str(),
            );
        }
    }

    /// One frame forwarded.
    pub(crate) fn frame(&mut self, len: usize, is_event: bool) {
        self.bytes += len as u64;
        if is_event {
            self.events += 1;
            if self.first_event.is_none() {
                self.first_event = Some(Instant::now());
            }
        }
    }

    pub(crate) fn completed(&mut self) {
        self.outcome.get_or_insert(("completed", None));
    }

    pub(crate) fn failed(&mut self, outcome: &'static str, code: String) {
        self.outcome.get_or_insert((outcome, Some(code)));
    }
}

impl Drop for StreamStats {
    fn drop(&mut self) {
        let (outcome, code) = self.outcome.take().unwrap_or(("client_cancelled", None));
        let span = &self.span;
        if let Some(first) = self.first_event {
            span.record("time_to_first_event_ms", ms(first - self.started));
        }
        span.record("events", self.events);
        span.record("bytes", self.bytes);
        span.record("duration_ms", ms(self.started.elapsed()));
        span.record("outcome", outcome);
        if let Some(code) = &code {
            span.record("error.code", code.as_str());
        }
        tracing::info!(parent: span, outcome, "stream ended");
    }
}

fn ms(duration: std::time::Duration) -> f64 {
    (duration.as_secs_f64() * 1e6).round() / 1e3
}
