//! The per-stream record: counters, the outcome read from the frames that carry it, and
//! the span and the summary made from them when the stream ends.

use super::{OnStreamEnd, Outcome, StreamSummary};
use crate::standard::report::{TokenUsage, read_outcome};
use http::StatusCode;
use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::time::Instant;
use tracing::Span;
use tracing::field::Empty;

/// Labels for a stream's span and summary, taken from a request extension, or a response extension (for
/// handlers that learn the provider and model from the body), when present: the layers do
/// not parse requests.
///
/// ```
/// use tower_llm_stream::observe::StreamLabels;
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

/// A request extension a server inserts to tell why a client went away: it
/// [`mark`](Self::mark)s it when it drops the connection because the client stopped reading
/// (its writes stalled for the idle timeout). A stream dropped before its end is then recorded
/// as [`ClientStalled`](super::Outcome::ClientStalled), not
/// [`ClientCancelled`](super::Outcome::ClientCancelled).
///
/// ```
/// use tower_llm_stream::observe::ClientStall;
///
/// let stall = ClientStall::new();
/// let mut request = http::Request::new(());
/// request.extensions_mut().insert(stall.clone());
/// // The server's connection, when the client has read nothing for too long:
/// stall.mark();
/// assert!(stall.is_marked());
/// ```
#[derive(Debug, Clone, Default)]
pub struct ClientStall(Arc<AtomicBool>);

impl ClientStall {
    /// A flag not yet marked.
    #[must_use]
    pub fn new() -> Self {
        ClientStall::default()
    }

    /// The connection is being dropped because the client stopped reading.
    pub fn mark(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether [`mark`](Self::mark) was called.
    #[must_use]
    pub fn is_marked(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The stream's span, with the request's labels.
pub(super) fn request_span(labels: Option<&StreamLabels>) -> Span {
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
        record_labels(&span, labels);
    }
    span
}

/// Records labels into the span (the request's, or a response's that replace them).
pub(super) fn record_labels(span: &Span, labels: &StreamLabels) {
    span.record("gen_ai.system", &*labels.system);
    span.record("gen_ai.request.model", &*labels.model);
}

/// One stream's record; turned into its span fields, its "stream ended" event and its
/// [`StreamSummary`] once, when the stream ends or is dropped.
pub(super) struct Recorder<C: OnStreamEnd> {
    pub(super) span: Span,
    labels: Option<StreamLabels>,
    status: Option<StatusCode>,
    started: Instant,
    first_event: Option<Instant>,
    events: u64,
    bytes: u64,
    usage: TokenUsage,
    finish_reasons: Vec<String>,
    outcome: Option<(Outcome, Option<String>)>,
    /// Set when the server may drop the connection of a client that stopped reading.
    pub(super) stall: Option<ClientStall>,
    on_end: C,
}

impl<C: OnStreamEnd> Recorder<C> {
    pub(super) fn new(
        span: Span,
        labels: Option<StreamLabels>,
        started: Instant,
        status: Option<StatusCode>,
        on_end: C,
    ) -> Self {
        if let Some(status) = status {
            span.record("http.response.status_code", status.as_u16());
        }
        Recorder {
            span,
            labels,
            status,
            started,
            first_event: None,
            events: 0,
            bytes: 0,
            usage: TokenUsage::default(),
            finish_reasons: Vec::new(),
            outcome: None,
            stall: None,
            on_end,
        }
    }

    /// Reads usage and finish reasons from the frame that carries them.
    pub(super) fn outcome_frame(&mut self, frame: &[u8]) {
        read_outcome(frame, &mut self.usage, &mut self.finish_reasons);
    }

    /// One frame sent.
    pub(super) fn frame(&mut self, len: usize, is_event: bool) {
        self.bytes += len as u64;
        if is_event {
            self.events += 1;
            if self.first_event.is_none() {
                self.first_event = Some(Instant::now());
            }
        }
    }

    pub(super) fn completed(&mut self) {
        self.outcome.get_or_insert((Outcome::Completed, None));
    }

    pub(super) fn failed(&mut self, outcome: Outcome, code: String) {
        self.outcome.get_or_insert((outcome, Some(code)));
    }

    pub(super) fn has_ended(&self) -> bool {
        self.outcome.is_some()
    }
}

impl<C: OnStreamEnd> Drop for Recorder<C> {
    fn drop(&mut self) {
        let (outcome, error_code) = self.outcome.take().unwrap_or_else(|| match &self.stall {
            Some(stall) if stall.is_marked() => (Outcome::ClientStalled, None),
            _ => (Outcome::ClientCancelled, None),
        });
        let labels = self.labels.take();
        let summary = StreamSummary {
            provider: labels.as_ref().map(|l| l.system.clone()),
            model: labels.map(|l| l.model),
            status: self.status,
            usage: self.usage,
            finish_reasons: std::mem::take(&mut self.finish_reasons),
            time_to_first_event: self.first_event.map(|first| first - self.started),
            events: self.events,
            bytes: self.bytes,
            duration: self.started.elapsed(),
            outcome,
            error_code,
        };
        let span = &self.span;
        if let Some(first) = summary.time_to_first_event {
            span.record("time_to_first_event_ms", ms(first));
        }
        if let Some(n) = summary.usage.input_tokens {
            span.record("gen_ai.usage.input_tokens", n);
        }
        if let Some(n) = summary.usage.output_tokens {
            span.record("gen_ai.usage.output_tokens", n);
        }
        if !summary.finish_reasons.is_empty() {
            span.record(
                "gen_ai.response.finish_reasons",
                format!("{:?}", summary.finish_reasons).as_str(),
            );
        }
        span.record("events", summary.events);
        span.record("bytes", summary.bytes);
        span.record("duration_ms", ms(summary.duration));
        span.record("outcome", outcome.as_str());
        if let Some(code) = &summary.error_code {
            span.record("error.code", code.as_str());
        }
        tracing::info!(parent: span, outcome = outcome.as_str(), "stream ended");
        self.on_end.on_stream_end(&summary);
    }
}

fn ms(duration: std::time::Duration) -> f64 {
    (duration.as_secs_f64() * 1e6).round() / 1e3
}
