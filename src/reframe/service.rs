use super::{ReframeBody, ResponseFuture};
use crate::dialect::{Dialect, Passthrough};
use crate::error::BoxError;
use http::{Request, Response};
use http_body::Body;
use std::task::{Context, Poll};
use tower_service::Service;

/// Middleware that reframes `text/event-stream` response bodies into one complete canonical
/// event per frame. See the [module docs](crate::reframe).
#[derive(Debug, Clone)]
pub struct SseReframe<S, D = Passthrough> {
    inner: S,
    dialect: D,
    max_event_size: usize,
}

impl<S, D> SseReframe<S, D> {
    /// Wraps `inner`, translating with `dialect` and accepting events up to `max_event_size`.
    pub fn new(inner: S, dialect: D, max_event_size: usize) -> Self {
        SseReframe {
            inner,
            dialect,
            max_event_size,
        }
    }

    /// The layer that applies this middleware: [`SseReframeLayer::new`](super::SseReframeLayer::new).
    #[must_use]
    pub fn layer() -> super::SseReframeLayer {
        super::SseReframeLayer::new()
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

impl<S, D, ReqBody, ResBody> Service<Request<ReqBody>> for SseReframe<S, D>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Body,
    ResBody::Error: Into<BoxError>,
    D: Dialect + Clone + Sync,
{
    type Response = Response<ReframeBody<ResBody, D>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, D>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        // A request extension of the dialect's type overrides the layer's dialect.
        let dialect = req
            .extensions()
            .get::<D>()
            .cloned()
            .unwrap_or_else(|| self.dialect.clone());
        ResponseFuture::new(self.inner.call(req), dialect, self.max_event_size)
    }
}
