//! The per-stream record: counters, the outcome read from the frames that carry it, and
//! the span and the summary made from them when the stream ends.

use super::{OnStreamEnd, Outcome, StreamSummary};
use crate::labels::{FallbackAttempts, StreamLabels};
use crate::standard::report::{TokenUsage, read_outcome};
use http::StatusCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::time::Instant;
use tracing::Span;
use tracing::field::Empty;

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
        gen_ai.provider.name = Empty,
        gen_ai.request.model = Empty,
        fallbacks = Empty,
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
    span.record("gen_ai.provider.name", &*labels.system);
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
    /// The targets that failed before the one that served (the fallback layer's report).
    fallbacks: Option<FallbackAttempts>,
    /// Set when the server may drop the connection of a client that stopped reading.
    pub(super) stall: Option<ClientStall>,
    on_end: C,
}

impl<C: OnStreamEnd> Recorder<C> {
    pub(super) fn new(
        span: Span,
        labels: Option<StreamLabels>,
        started: Instant,
        on_end: C,
    ) -> Self {
        on_end.on_stream_start(labels.as_ref());
        Recorder {
            span,
            labels,
            status: None,
            started,
            first_event: None,
            events: 0,
            bytes: 0,
            usage: TokenUsage::default(),
            finish_reasons: Vec::new(),
            outcome: None,
            fallbacks: None,
            stall: None,
            on_end,
        }
    }

    /// The response head: its status, the labels it replaces the request's with, the
    /// fallback layer's report.
    pub(super) fn head(&mut self, parts: &http::response::Parts) {
        self.status = Some(parts.status);
        self.span.record(
            "http.response.status_code",
            i64::from(parts.status.as_u16()),
        );
        if let Some(late) = parts.extensions.get::<StreamLabels>() {
            record_labels(&self.span, late);
            // Who the stream is for stays the request's when the response does not say
            // (a fallback target's labels name its provider and model only).
            let client = self.labels.take().and_then(|l| l.client);
            let mut late = late.clone();
            if late.client.is_none() {
                late.client = client;
            }
            self.labels = Some(late);
        }
        if let Some(fallbacks) = parts.extensions.get::<FallbackAttempts>() {
            self.span
                .record("fallbacks", tracing::field::display(fallbacks));
            self.fallbacks = Some(fallbacks.clone());
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
        let (provider, model, client) = match labels {
            Some(l) => (Some(l.system), Some(l.model), l.client),
            None => (None, None, None),
        };
        let summary = StreamSummary {
            provider,
            model,
            client,
            fallbacks: self.fallbacks.take().map(|f| f.0).unwrap_or_default(),
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
            span.record("gen_ai.usage.input_tokens", otel_int(n));
        }
        if let Some(n) = summary.usage.output_tokens {
            span.record("gen_ai.usage.output_tokens", otel_int(n));
        }
        if !summary.finish_reasons.is_empty() {
            span.record(
                "gen_ai.response.finish_reasons",
                format!("{:?}", summary.finish_reasons).as_str(),
            );
        }
        span.record("events", otel_int(summary.events));
        span.record("bytes", otel_int(summary.bytes));
        span.record("duration_ms", ms(summary.duration));
        span.record("outcome", outcome.as_str());
        if let Some(code) = &summary.error_code {
            span.record("error.code", code.as_str());
        }
        tracing::info!(parent: span, outcome = outcome.as_str(), "stream ended");
        self.on_end.on_stream_end(&summary);
    }
}

/// Counts are recorded as `i64`: OpenTelemetry has no unsigned integer, and an exporter may
/// write a `u64` as text.
fn otel_int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn ms(duration: std::time::Duration) -> f64 {
    (duration.as_secs_f64() * 1e6).round() / 1e3
}
