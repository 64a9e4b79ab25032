//! What a stream is about, shared by the layers that label it and the ones that report it:
//! [`StreamLabels`] (provider, model, and who it is for) and [`FailedAttempt`] (what the
//! [`FallbackLayer`](crate::fallback::FallbackLayer) tried before the target that served).

use http::StatusCode;
use std::borrow::Cow;

/// Labels for a stream's span and summary, taken from a request extension, or a response
/// extension (for handlers that learn the provider and model from the body), when present:
/// the layers do not parse requests.
///
/// ```
/// use tower_llm_stream::observe::StreamLabels;
///
/// let mut request = http::Request::new(());
/// request
///     .extensions_mut()
///     .insert(StreamLabels::new("anthropic", "claude-sonnet-4-5").client("team-a"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamLabels {
    /// The provider (`gen_ai.provider.name`), e.g. `openai`.
    pub system: Cow<'static, str>,
    /// The requested model (`gen_ai.request.model`).
    pub model: Cow<'static, str>,
    /// Who the stream is for, as the application names it (a tenant, an API key's id; never
    /// the key itself): handed to the summary for metering, not recorded in the span.
    pub client: Option<Cow<'static, str>>,
}

impl StreamLabels {
    /// Labels for a provider and model.
    pub fn new(system: impl Into<Cow<'static, str>>, model: impl Into<Cow<'static, str>>) -> Self {
        StreamLabels {
            system: system.into(),
            model: model.into(),
            client: None,
        }
    }

    /// Names who the stream is for (see [`client`](Self::client)).
    ///
    /// ```
    /// use tower_llm_stream::observe::StreamLabels;
    ///
    /// let labels = StreamLabels::new("openai", "gpt-4o-mini").client("key-7");
    /// assert_eq!(labels.client.as_deref(), Some("key-7"));
    /// ```
    #[must_use]
    pub fn client(mut self, client: impl Into<Cow<'static, str>>) -> Self {
        self.client = Some(client.into());
        self
    }
}

/// One target the fallback layer tried that failed before the stream committed, and why.
///
/// ```
/// use tower_llm_stream::labels::FailedAttempt;
///
/// let attempt = FailedAttempt::new(None, "rate_limited").status(http::StatusCode::TOO_MANY_REQUESTS);
/// assert_eq!(attempt.to_string(), "429 rate_limited");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FailedAttempt {
    /// The attempt's labels, when its request had them.
    pub labels: Option<StreamLabels>,
    /// The HTTP status it answered, when it answered one that failed.
    pub status: Option<StatusCode>,
    /// Why it failed: an error code (`upstream_unavailable`, `upstream_timeout`,
    /// `stream_idle_timeout`, the provider's own) or what the status means.
    pub reason: Cow<'static, str>,
    /// The upstream's `Retry-After`, as it sent it (noted, never slept on).
    pub retry_after: Option<Box<str>>,
}

impl FailedAttempt {
    /// A failed attempt and its reason.
    pub fn new(labels: Option<StreamLabels>, reason: impl Into<Cow<'static, str>>) -> Self {
        FailedAttempt {
            labels,
            status: None,
            reason: reason.into(),
            retry_after: None,
        }
    }

    /// The status it answered.
    #[must_use]
    pub fn status(mut self, status: StatusCode) -> Self {
        self.status = Some(status);
        self
    }

    /// The `Retry-After` it sent.
    #[must_use]
    pub fn retry_after(mut self, retry_after: impl Into<String>) -> Self {
        self.retry_after = Some(retry_after.into().into_boxed_str());
        self
    }
}

impl std::fmt::Display for FailedAttempt {
    /// `provider/model: 429 rate_limited (retry-after 3)`, the parts that are known.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(labels) = &self.labels {
            write!(f, "{}/{}: ", labels.system, labels.model)?;
        }
        if let Some(status) = self.status {
            write!(f, "{} ", status.as_u16())?;
        }
        f.write_str(&self.reason)?;
        if let Some(retry_after) = &self.retry_after {
            write!(f, " (retry-after {retry_after})")?;
        }
        Ok(())
    }
}

/// A response extension the fallback layer inserts when a target other than the first
/// served: the attempts that failed before it, in order.
///
/// ```
/// use tower_llm_stream::labels::{FailedAttempt, FallbackAttempts};
///
/// let attempts = FallbackAttempts(vec![FailedAttempt::new(None, "upstream_unavailable")]);
/// assert_eq!(attempts.to_string(), "upstream_unavailable");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FallbackAttempts(pub Vec<FailedAttempt>);

impl std::fmt::Display for FallbackAttempts {
    /// The attempts, separated by `; `.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, attempt) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{attempt}")?;
        }
        Ok(())
    }
}
