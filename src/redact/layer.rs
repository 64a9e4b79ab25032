use super::{Redact, Secrets};
use std::borrow::Cow;
use tower_layer::Layer;

/// Applies [`Redact`] to a service. See the [module docs](crate::redact).
///
/// Cheap to clone: the secrets' searcher is shared. Its `Debug` output never shows the
/// secrets.
///
/// ```
/// use tower_llm_stream::RedactLayer;
///
/// let layer = RedactLayer::new(["sk-proj-0123456789"]);
/// assert_eq!(format!("{layer:?}"), "RedactLayer { secrets: Secrets { count: 1 } }");
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct RedactLayer {
    secrets: Secrets,
}

impl RedactLayer {
    /// Redacts `secrets` (provider API keys) from every response body.
    ///
    /// Each secret is trimmed of surrounding ASCII whitespace; empty secrets and secrets
    /// shorter than 8 bytes ([`MIN_SECRET_LEN`](super::MIN_SECRET_LEN)) are ignored: too
    /// short to be keys, they would redact ordinary text. With no secret left the layer is a
    /// no-op: bodies and headers pass untouched. See [`Secrets::new`].
    ///
    /// ```
    /// use tower_llm_stream::RedactLayer;
    ///
    /// let keys = [std::env::var("OPENAI_API_KEY").unwrap_or_default()];
    /// let layer = RedactLayer::new(&keys);
    /// # let _ = layer;
    /// ```
    pub fn new(secrets: impl IntoIterator<Item = impl AsRef<[u8]>>) -> Self {
        RedactLayer {
            secrets: Secrets::new(secrets),
        }
    }

    /// The secrets this layer redacts, to redact other text (log lines) the same way.
    ///
    /// ```
    /// use tower_llm_stream::RedactLayer;
    ///
    /// let layer = RedactLayer::new(["sk-abcdefgh"]);
    /// let secrets = layer.secrets().clone(); // shares the searcher
    /// assert_eq!(secrets.redact_str("upstream said sk-abcdefgh"), "upstream said [redacted]");
    /// ```
    #[must_use]
    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    /// `text` with every secret replaced by `[redacted]`; borrowed when there is none. The
    /// same as [`Secrets::redact_str`].
    ///
    /// ```
    /// use tower_llm_stream::RedactLayer;
    ///
    /// let layer = RedactLayer::new(["sk-abcdefgh"]);
    /// assert_eq!(layer.redact_str("Incorrect API key provided: sk-abcdefgh"),
    ///            "Incorrect API key provided: [redacted]");
    /// ```
    #[must_use]
    pub fn redact_str<'a>(&self, text: &'a str) -> Cow<'a, str> {
        self.secrets.redact_str(text)
    }
}

impl From<Secrets> for RedactLayer {
    /// A layer sharing these secrets' searcher.
    ///
    /// ```
    /// use tower_llm_stream::RedactLayer;
    /// use tower_llm_stream::redact::Secrets;
    ///
    /// let secrets = Secrets::new(["sk-abcdefgh"]);
    /// let layer = RedactLayer::from(secrets.clone());
    /// assert_eq!(layer.secrets().len(), 1);
    /// ```
    fn from(secrets: Secrets) -> Self {
        RedactLayer { secrets }
    }
}

impl<S> Layer<S> for RedactLayer {
    type Service = Redact<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Redact {
            inner,
            secrets: self.secrets.clone(),
        }
    }
}
