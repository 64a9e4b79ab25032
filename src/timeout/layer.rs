use super::{Shutdown, StreamTimeout, StreamTimeouts};
use http::HeaderName;
use std::time::Duration;
use tower_layer::Layer;

/// Applies [`StreamTimeout`] to a service. See the [module docs](crate::timeout).
#[derive(Debug, Clone)]
pub struct StreamTimeoutLayer {
    pub(crate) config: TimeoutConfig,
}

#[derive(Debug, Clone)]
pub(crate) struct TimeoutConfig {
    pub(crate) timeouts: StreamTimeouts,
    pub(crate) header: Option<(HeaderName, Duration)>,
    pub(crate) keep_alive: Option<Duration>,
    pub(crate) shutdown: Option<Shutdown>,
}

impl Default for StreamTimeoutLayer {
    fn default() -> Self {
        StreamTimeoutLayer::new()
    }
}

impl StreamTimeoutLayer {
    /// 30 s for the response head and between events, no total deadline, no header override,
    /// no keep-alives.
    #[must_use]
    pub fn new() -> Self {
        StreamTimeoutLayer {
            config: TimeoutConfig {
                timeouts: StreamTimeouts::default(),
                header: None,
                keep_alive: None,
                shutdown: None,
            },
        }
    }

    /// Sets the head and idle timeouts (the gap between events) to `timeout`.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.config.timeouts.head = Some(timeout);
        self.config.timeouts.idle = Some(timeout);
        self
    }

    /// Replaces all the timeouts.
    #[must_use]
    pub fn timeouts(mut self, timeouts: StreamTimeouts) -> Self {
        self.config.timeouts = timeouts;
        self
    }

    /// Sets a total deadline for the whole stream, from the request on.
    #[must_use]
    pub fn total(mut self, deadline: Duration) -> Self {
        self.config.timeouts.total = Some(deadline);
        self
    }

    /// Lets clients set the head and idle timeouts with this header (seconds, decimals
    /// allowed), clamped to `max`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use http::HeaderName;
    /// use tower_llm_stream::timeout::StreamTimeoutLayer;
    ///
    /// static TIMEOUT: HeaderName = HeaderName::from_static("x-request-timeout");
    /// let layer = StreamTimeoutLayer::new().override_header(TIMEOUT.clone(), Duration::from_secs(600));
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn override_header(mut self, name: HeaderName, max: Duration) -> Self {
        self.config.header = Some((name, max));
        self
    }

    /// Sends a `: keep-alive` comment frame whenever nothing was sent for `interval`, on
    /// event streams only (other bodies are left byte for byte as they are).
    #[must_use]
    pub fn keep_alive(mut self, interval: Duration) -> Self {
        self.config.keep_alive = Some(interval);
        self
    }

    /// Ends open streams with the `server_shutting_down` error event when `signal` is
    /// triggered (see [`Shutdown`]).
    #[must_use]
    pub fn shutdown(mut self, signal: Shutdown) -> Self {
        self.config.shutdown = Some(signal);
        self
    }
}

impl<S> Layer<S> for StreamTimeoutLayer {
    type Service = StreamTimeout<S>;

    fn layer(&self, inner: S) -> Self::Service {
        StreamTimeout {
            inner,
            config: self.config.clone(),
        }
    }
}
