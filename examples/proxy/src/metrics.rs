//! Prometheus metrics of the proxy's streams, served at `GET /metrics`.
//!
//! [`Metrics`] is the [`OnStreamEnd`] callback of the proxy's layer stack: it counts the
//! streams open, and records each stream once, from its [`StreamSummary`], when it ends
//! (nothing per event). The names follow the OpenTelemetry GenAI semantic conventions where
//! they have one (`gen_ai_*`), in Prometheus' spelling:
//!
//! | metric | type | what it counts |
//! |---|---|---|
//! | `gen_ai_server_time_to_first_token_seconds` | histogram | from the request to the first event, for the streams that sent one |
//! | `gen_ai_server_request_duration_seconds` | histogram | from the request to the end of the stream, for every stream |
//! | `gen_ai_usage_input_tokens_total` | counter | input (prompt) tokens, as the upstreams reported them |
//! | `gen_ai_usage_output_tokens_total` | counter | output (completion) tokens, as the upstreams reported them |
//! | `llm_stream_outcomes_total` | counter | streams by how they ended (`outcome`: `completed`, `error`, `timeout`, `http_error`, `client_cancelled`, `client_stalled`) |
//! | `llm_streams_active` | gauge | streams open now |
//! | `llm_fallbacks_total` | counter | attempts that failed before another target served the stream, by the failed attempt's provider and model |
//!
//! All but `llm_streams_active` carry the labels `gen_ai_provider_name` and
//! `gen_ai_request_model`. Their values are bounded: a model named by
//! [`Metrics::allow_models`] (the proxy names each routable provider's model list) has its own
//! series; of the other models of a provider the first few seen get their own, the rest share
//! the value `other` (as do providers beyond the first few that were never named). A stream
//! without labels is `unknown`. Requests the proxy refuses never reach the layers: they make
//! no series.
//!
//! ```
//! use llm_proxy::metrics::Metrics;
//! use tower_llm_stream::LlmStreamLayer;
//!
//! let metrics = Metrics::new();
//! metrics.allow_models("openai", &["gpt-4o-mini".to_owned()]);
//! // Each stream through the stack is recorded when it ends.
//! let layer = LlmStreamLayer::new().on_stream_end(metrics.clone());
//! # let _ = layer;
//! let text = metrics.render();
//! assert!(text.contains("# TYPE llm_streams_active gauge\n"));
//! assert!(text.ends_with("# EOF\n"));
//! ```

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tower_llm_stream::observe::{OnStreamEnd, StreamLabels, StreamSummary};

/// The `Content-Type` of [`Metrics::render`]'s text: the OpenMetrics text format, which
/// Prometheus reads.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Models of one provider that get their own series without being named by
/// [`Metrics::allow_models`]; later ones are `other`.
pub const MAX_UNLISTED_MODELS: usize = 32;

/// Providers that get their own series without being named by [`Metrics::allow_models`];
/// later ones are `other`.
pub const MAX_UNLISTED_PROVIDERS: usize = 32;

/// The label value shared by the models (and providers) beyond the caps.
pub const OTHER: &str = "other";

/// The label value of a stream that had no provider or model.
pub const UNKNOWN: &str = "unknown";

/// Upper bounds of the time histograms' buckets, in seconds, each twice the one before: an
/// instant first token and a reasoning model's minutes-long answer both fall in a bucket of
/// their own.
const SECONDS_BUCKETS: [f64; 16] = [
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92, 163.84,
    327.68,
];

/// The proxy's Prometheus metrics: a registry and the metrics in it, fed by the layer stack
/// as its [`OnStreamEnd`] callback. Cheap to clone; clones share the registry, so one scrape
/// shows the streams of every worker thread. See the [module docs](self) for the metrics.
///
/// ```
/// use llm_proxy::metrics::Metrics;
///
/// let metrics = Metrics::new();
/// let per_thread = metrics.clone();
/// # let _ = per_thread;
/// let scrape = metrics.render();
/// assert!(scrape.contains("llm_streams_active 0\n"));
/// ```
#[derive(Clone, Default)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    time_to_first_token: Family<ModelLabels, Histogram, fn() -> Histogram>,
    request_duration: Family<ModelLabels, Histogram, fn() -> Histogram>,
    input_tokens: Family<ModelLabels, Counter>,
    output_tokens: Family<ModelLabels, Counter>,
    outcomes: Family<OutcomeLabels, Counter>,
    streams_active: Gauge,
    fallbacks: Family<ModelLabels, Counter>,
    label_values: Mutex<LabelValues>,
}

/// The provider and model labels of a series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabels {
    gen_ai_provider_name: Arc<str>,
    gen_ai_request_model: Arc<str>,
}

/// The labels of `llm_stream_outcomes_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    gen_ai_provider_name: Arc<str>,
    gen_ai_request_model: Arc<str>,
    outcome: &'static str,
}

fn seconds_histogram() -> Histogram {
    Histogram::new(SECONDS_BUCKETS)
}

impl Metrics {
    /// A fresh registry with every metric registered, no stream recorded.
    pub fn new() -> Self {
        Metrics::default()
    }

    /// Gives each model in `models` of `provider` its own series (see the
    /// [module docs](self) for the other models). The proxy calls it with each routable
    /// provider's model list; calling it again adds to the list.
    ///
    /// ```
    /// use llm_proxy::metrics::Metrics;
    ///
    /// let metrics = Metrics::new();
    /// metrics.allow_models("demo", &["echo".to_owned(), "instant".to_owned()]);
    /// ```
    pub fn allow_models(&self, provider: &str, models: &[String]) {
        let mut values = self.inner.lock_label_values();
        let entry = values.provider_entry(provider);
        for model in models {
            entry
                .models
                .entry(model.clone())
                .or_insert_with(|| Arc::from(model.as_str()));
        }
    }

    /// The metrics in the OpenMetrics text format ([`CONTENT_TYPE`]), ending with `# EOF`.
    /// A metric without series yet (no stream has ended) is left out.
    ///
    /// ```
    /// use llm_proxy::metrics::Metrics;
    ///
    /// let text = Metrics::new().render();
    /// assert_eq!(
    ///     text,
    ///     concat!(
    ///         "# HELP llm_streams_active Streams open now.\n",
    ///         "# TYPE llm_streams_active gauge\n",
    ///         "llm_streams_active 0\n",
    ///         "# EOF\n",
    ///     ),
    /// );
    /// ```
    pub fn render(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.inner.registry)
            .expect("writing to a String does not fail");
        text
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("streams_active", &self.inner.streams_active.get())
            .finish_non_exhaustive()
    }
}

impl OnStreamEnd for Metrics {
    fn on_stream_start(&self, _labels: Option<&StreamLabels>) {
        self.inner.streams_active.inc();
    }

    fn on_stream_end(&self, summary: &StreamSummary) {
        let inner = &*self.inner;
        let labels = inner.labels(summary.provider.as_deref(), summary.model.as_deref());
        inner
            .request_duration
            .get_or_create(&labels)
            .observe(summary.duration.as_secs_f64());
        if let Some(first) = summary.time_to_first_event {
            inner
                .time_to_first_token
                .get_or_create(&labels)
                .observe(first.as_secs_f64());
        }
        if let Some(tokens) = summary.usage.input_tokens {
            inner.input_tokens.get_or_create(&labels).inc_by(tokens);
        }
        if let Some(tokens) = summary.usage.output_tokens {
            inner.output_tokens.get_or_create(&labels).inc_by(tokens);
        }
        for attempt in &summary.fallbacks {
            let failed = attempt.labels.as_ref();
            let failed = inner.labels(
                failed.map(|l| l.system.as_ref()),
                failed.map(|l| l.model.as_ref()),
            );
            inner.fallbacks.get_or_create(&failed).inc();
        }
        let ModelLabels {
            gen_ai_provider_name,
            gen_ai_request_model,
        } = labels;
        inner
            .outcomes
            .get_or_create(&OutcomeLabels {
                gen_ai_provider_name,
                gen_ai_request_model,
                outcome: summary.outcome.as_str(),
            })
            .inc();
        // Last: once the gauge is back down, the stream's other records are in place.
        inner.streams_active.dec();
    }
}

impl Default for Inner {
    fn default() -> Self {
        let mut registry = Registry::default();
        let time_to_first_token =
            Family::<_, _, fn() -> Histogram>::new_with_constructor(seconds_histogram as _);
        registry.register_with_unit(
            "gen_ai_server_time_to_first_token",
            "Time from the request to the first event of the stream",
            Unit::Seconds,
            time_to_first_token.clone(),
        );
        let request_duration =
            Family::<_, _, fn() -> Histogram>::new_with_constructor(seconds_histogram as _);
        registry.register_with_unit(
            "gen_ai_server_request_duration",
            "Time from the request to the end of the stream",
            Unit::Seconds,
            request_duration.clone(),
        );
        // Counters are registered without `_total`: the encoder appends it.
        let input_tokens = Family::default();
        registry.register(
            "gen_ai_usage_input_tokens",
            "Input tokens, as the upstreams reported them",
            input_tokens.clone(),
        );
        let output_tokens = Family::default();
        registry.register(
            "gen_ai_usage_output_tokens",
            "Output tokens, as the upstreams reported them",
            output_tokens.clone(),
        );
        let outcomes = Family::default();
        registry.register(
            "llm_stream_outcomes",
            "Streams ended, by outcome",
            outcomes.clone(),
        );
        let streams_active = Gauge::default();
        registry.register(
            "llm_streams_active",
            "Streams open now",
            streams_active.clone(),
        );
        let fallbacks = Family::default();
        registry.register(
            "llm_fallbacks",
            "Attempts that failed before another target served the stream, by the failed attempt's provider and model",
            fallbacks.clone(),
        );
        Inner {
            registry,
            time_to_first_token,
            request_duration,
            input_tokens,
            output_tokens,
            outcomes,
            streams_active,
            fallbacks,
            label_values: Mutex::new(LabelValues::default()),
        }
    }
}

impl Inner {
    fn lock_label_values(&self) -> std::sync::MutexGuard<'_, LabelValues> {
        // The table stays consistent through a panic elsewhere: every change is one insert.
        self.label_values
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The label values of a provider and model, within the caps.
    fn labels(&self, provider: Option<&str>, model: Option<&str>) -> ModelLabels {
        let mut values = self.lock_label_values();
        let (gen_ai_provider_name, gen_ai_request_model) = values.resolve(provider, model);
        ModelLabels {
            gen_ai_provider_name,
            gen_ai_request_model,
        }
    }
}

/// The label values handed out so far: each provider's and model's name once, shared by
/// every series that carries it.
struct LabelValues {
    providers: HashMap<String, ProviderModels>,
    /// Providers that got their own value without [`Metrics::allow_models`].
    unlisted_providers: usize,
    other: Arc<str>,
    unknown: Arc<str>,
}

struct ProviderModels {
    name: Arc<str>,
    models: HashMap<String, Arc<str>>,
    /// Models that got their own value without [`Metrics::allow_models`].
    unlisted: usize,
}

impl Default for LabelValues {
    fn default() -> Self {
        LabelValues {
            providers: HashMap::new(),
            unlisted_providers: 0,
            other: Arc::from(OTHER),
            unknown: Arc::from(UNKNOWN),
        }
    }
}

impl LabelValues {
    /// The entry of a provider the application named.
    fn provider_entry(&mut self, provider: &str) -> &mut ProviderModels {
        self.providers
            .entry(provider.to_owned())
            .or_insert_with(|| ProviderModels {
                name: Arc::from(provider),
                models: HashMap::new(),
                unlisted: 0,
            })
    }

    /// The values of a provider and model: their own names, or `other` beyond the caps;
    /// `unknown` for what the stream did not say.
    fn resolve(&mut self, provider: Option<&str>, model: Option<&str>) -> (Arc<str>, Arc<str>) {
        let provider = provider.unwrap_or(UNKNOWN);
        if !self.providers.contains_key(provider) {
            if self.unlisted_providers >= MAX_UNLISTED_PROVIDERS {
                return (self.other.clone(), self.other.clone());
            }
            self.unlisted_providers += 1;
            self.provider_entry(provider);
        }
        let entry = self.providers.get_mut(provider).expect("inserted above");
        let Some(model) = model else {
            return (entry.name.clone(), self.unknown.clone());
        };
        if let Some(value) = entry.models.get(model) {
            return (entry.name.clone(), value.clone());
        }
        if entry.unlisted >= MAX_UNLISTED_MODELS {
            return (entry.name.clone(), self.other.clone());
        }
        entry.unlisted += 1;
        let value: Arc<str> = Arc::from(model);
        entry.models.insert(model.to_owned(), value.clone());
        (entry.name.clone(), value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlisted_models_beyond_the_cap_are_other() {
        let mut values = LabelValues::default();
        values
            .provider_entry("demo")
            .models
            .insert("echo".into(), Arc::from("echo"));
        for i in 0..MAX_UNLISTED_MODELS {
            let model = format!("m{i}");
            assert_eq!(&*values.resolve(Some("demo"), Some(&model)).1, model);
        }
        assert_eq!(&*values.resolve(Some("demo"), Some("one-more")).1, OTHER);
        // Listed and already seen models keep their own value.
        assert_eq!(&*values.resolve(Some("demo"), Some("echo")).1, "echo");
        assert_eq!(&*values.resolve(Some("demo"), Some("m0")).1, "m0");
    }

    #[test]
    fn unlisted_providers_beyond_the_cap_are_other() {
        let mut values = LabelValues::default();
        for i in 0..MAX_UNLISTED_PROVIDERS {
            let provider = format!("p{i}");
            assert_eq!(&*values.resolve(Some(&provider), Some("m")).0, provider);
        }
        let (provider, model) = values.resolve(Some("one-more"), Some("m"));
        assert_eq!((&*provider, &*model), (OTHER, OTHER));
        // A stream without labels: `unknown` for both.
        let (provider, model) = LabelValues::default().resolve(None, None);
        assert_eq!((&*provider, &*model), (UNKNOWN, UNKNOWN));
    }
}
