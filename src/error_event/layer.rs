use super::ErrorEvent;
use tower_layer::Layer;

/// The default limit on an upstream error body read for normalization: 64 KiB.
pub(super) const DEFAULT_MAX_ERROR_BODY: usize = 64 * 1024;

/// Applies [`ErrorEvent`] to a service. See the [module docs](crate::error_event).
#[derive(Debug, Clone)]
pub struct ErrorEventLayer {
    max_error_body: usize,
}

impl Default for ErrorEventLayer {
    fn default() -> Self {
        ErrorEventLayer::new()
    }
}

impl ErrorEventLayer {
    /// Error events and normalized error responses.
    #[must_use]
    pub fn new() -> Self {
        ErrorEventLayer {
            max_error_body: DEFAULT_MAX_ERROR_BODY,
        }
    }

    /// How much of an upstream error body is read to normalize it (64 KiB by default).
    #[must_use]
    pub fn max_error_body(mut self, bytes: usize) -> Self {
        self.max_error_body = bytes;
        self
    }
}

impl<S> Layer<S> for ErrorEventLayer {
    type Service = ErrorEvent<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ErrorEvent {
            inner,
            max_error_body: self.max_error_body,
        }
    }
}
