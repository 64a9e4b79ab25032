use crate::labels::FailedAttempt;
use http::Request;
use std::fmt;
use std::sync::Arc;

type MakeRequest<B> = Arc<dyn Fn() -> Result<Request<B>, FailedAttempt> + Send + Sync>;

/// A request extension: the targets to try, in order, when the request itself fails before
/// its stream commits. Each makes its own request (its URL, its translation of the body, its
/// extensions: dialect, labels), or says why it cannot take this one (skipped, and listed
/// among the failed attempts).
///
/// Keep the client's body as `Bytes` and translate it again in each target.
///
/// ```
/// use bytes::Bytes;
/// use http_body_util::Full;
/// use tower_llm_stream::fallback::{FailedAttempt, FallbackTargets};
///
/// let body = Bytes::from_static(b"{\"model\":\"backup\"}");
/// let targets = FallbackTargets::new()
///     .then(move || {
///         Ok(http::Request::post("http://backup/v1/chat/completions").body(Full::new(body.clone())).unwrap())
///     })
///     .then(|| Err(FailedAttempt::new(None, "unsupported_parameter")));
/// assert_eq!(targets.len(), 2);
/// let mut request = http::Request::new(Full::<Bytes>::default());
/// request.extensions_mut().insert(targets);
/// ```
pub struct FallbackTargets<B> {
    targets: Vec<MakeRequest<B>>,
}

impl<B> FallbackTargets<B> {
    /// No targets.
    #[must_use]
    pub fn new() -> Self {
        FallbackTargets {
            targets: Vec::new(),
        }
    }

    /// Adds a target after those already there.
    #[must_use]
    pub fn then(
        mut self,
        make: impl Fn() -> Result<Request<B>, FailedAttempt> + Send + Sync + 'static,
    ) -> Self {
        self.targets.push(Arc::new(make));
        self
    }

    /// How many targets there are.
    #[must_use]
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// The request of the target at `index`.
    pub(super) fn make(&self, index: usize) -> Option<Result<Request<B>, FailedAttempt>> {
        self.targets.get(index).map(|make| make())
    }
}

impl<B> Default for FallbackTargets<B> {
    fn default() -> Self {
        FallbackTargets::new()
    }
}

impl<B> Clone for FallbackTargets<B> {
    fn clone(&self) -> Self {
        FallbackTargets {
            targets: self.targets.clone(),
        }
    }
}

impl<B> fmt::Debug for FallbackTargets<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FallbackTargets")
            .field("targets", &self.targets.len())
            .finish()
    }
}
