use super::{ResponseFuture, UsageBody};
use http::{Request, Response};
use std::task::{Context, Poll};
use tower_service::Service;

/// Middleware that moves usage and finish reasons into the last chunk.
/// See the [module docs](crate::usage).
#[derive(Debug, Clone)]
pub struct UsageLastChunk<S> {
    pub(crate) inner: S,
}

impl<S> UsageLastChunk<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        UsageLastChunk { inner }
    }

    /// The layer that applies this middleware: [`UsageLastChunkLayer::new`](super::UsageLastChunkLayer::new).
    #[must_use]
    pub fn layer() -> super::UsageLastChunkLayer {
        super::UsageLastChunkLayer::new()
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Consumes the middleware, returning the wrapped service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for UsageLastChunk<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<UsageBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        ResponseFuture {
            inner: self.inner.call(req),
        }
    }
}
