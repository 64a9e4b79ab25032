//! The per-stream `tracing` span and what is recorded into it when the stream ends.

use crate::body_util::raw_string;
use http::StatusCode;
use serde::Deserialize;
use serde_json::value::RawValue;
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

/// The fields of a chunk or Responses event that carry its outcome. Each is kept as raw JSON
/// and read on its own, so a field of an unexpected shape loses only itself.
#[derive(Deserialize)]
struct Outcome<'a> {
    #[serde(default, borrow)]
    usage: Option<&'a RawValue>,
    #[serde(default, borrow)]
    choices: Option<&'a RawValue>,
    #[serde(default, borrow)]
    response: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ResponseOutcome<'a> {
    #[serde(default, borrow)]
    usage: Option<&'a RawValue>,
    #[serde(default, borrow)]
    status: Option<&'a RawValue>,
}

/// Token counts under either API's names (chat: prompt/completion, Responses: input/output).
#[derive(Deserialize)]
struct Usage<'a> {
    #[serde(default, borrow)]
    prompt_tokens: Option<&'a RawValue>,
    #[serde(default, borrow)]
    input_tokens: Option<&'a RawValue>,
    #[serde(default, borrow)]
    completion_tokens: Option<&'a RawValue>,
    #[serde(default, borrow)]
    output_tokens: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(default, borrow)]
    finish_reason: Option<&'a RawValue>,
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
    /// those frames, and only the fields it records (borrowed, nothing else built).
    pub(crate) fn outcome_frame(&mut self, frame: &[u8]) {
        let Some(data) = frame
            .split(|&b| b == b'\n')
            .find_map(|line| line.strip_prefix(b"data: "))
        else {
            return;
        };
        let Ok(outcome) = serde_json::from_slice::<Outcome<'_>>(data) else {
            return;
        };
        let response = outcome
            .response
            .and_then(|r| serde_json::from_str::<ResponseOutcome<'_>>(r.get()).ok());
        // Chat chunks carry `usage`; Responses terminal events `response.usage`.
        let usage = outcome
            .usage
            .or(response.as_ref().and_then(|r| r.usage))
            .and_then(|u| serde_json::from_str::<Usage<'_>>(u.get()).ok());
        if let Some(usage) = usage {
            let count = |raw: Option<&RawValue>| raw.and_then(|n| n.get().parse::<u64>().ok());
            if let Some(n) = count(usage.prompt_tokens).or(count(usage.input_tokens)) {
                self.span.record("gen_ai.usage.input_tokens", n);
            }
            if let Some(n) = count(usage.completion_tokens).or(count(usage.output_tokens)) {
                self.span.record("gen_ai.usage.output_tokens", n);
            }
        }
        let reasons: Vec<Cow<'_, str>> = outcome
            .choices
            .and_then(|c| serde_json::from_str::<Vec<Choice<'_>>>(c.get()).ok())
            .into_iter()
            .flatten()
            .filter_map(|c| c.finish_reason.and_then(raw_string))
            .collect();
        let status = response.and_then(|r| r.status).and_then(raw_string);
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
