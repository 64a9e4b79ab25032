use super::Fallback;
use tower_layer::Layer;

/// Applies [`Fallback`] to a service. See the [module docs](crate::fallback).
///
/// ```
/// use tower::ServiceBuilder;
/// use tower_llm_stream::fallback::FallbackLayer;
///
/// let service = ServiceBuilder::new()
///     .layer(FallbackLayer::new())
///     .service(tower::service_fn(|_req: http::Request<()>| async {
///         Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
///     }));
/// # let _ = service;
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct FallbackLayer {
    max_held: usize,
}

/// What is held back at most before the commit: a role chunk and a few lifecycle events
/// are far smaller. Past it the stream commits.
pub(super) const DEFAULT_MAX_HELD: usize = 64 * 1024;

impl FallbackLayer {
    /// Fallback through each request's [`FallbackTargets`](super::FallbackTargets).
    pub fn new() -> Self {
        FallbackLayer {
            max_held: DEFAULT_MAX_HELD,
        }
    }

    /// The most bytes held back before the commit (64 KiB by default): an attempt that sends
    /// more before its first content event commits there.
    ///
    /// ```
    /// let layer = tower_llm_stream::fallback::FallbackLayer::new().max_held(16 * 1024);
    /// # let _ = layer;
    /// ```
    pub fn max_held(mut self, bytes: usize) -> Self {
        self.max_held = bytes;
        self
    }
}

impl<S> Layer<S> for FallbackLayer {
    type Service = Fallback<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Fallback {
            inner,
            max_held: if self.max_held == 0 {
                DEFAULT_MAX_HELD
            } else {
                self.max_held
            },
        }
    }
}
