use super::{ErrorEventBody, ResponseFuture};
use crate::error::BoxError;
use http::{Request, Response};
use http_body::Body;
use std::task::{Context, Poll};
use tower_service::Service;

/// Middleware that renders failures as error events and normalizes error responses.
/// See the [module docs](crate::error_event).
#[derive(Debug, Clone)]
pub struct ErrorEvent<S> {
    pub(crate) inner: S,
    pub(crate) max_error_body: usize,
}

impl<S> ErrorEvent<S> {
    /// Wraps `inner`, reading upstream error bodies up to 64 KiB.
    pub fn new(inner: S) -> Self {
        ErrorEvent {
            inner,
            max_error_body: super::layer::DEFAULT_MAX_ERROR_BODY,
        }
    }

    /// The layer that applies this middleware: [`ErrorEventLayer::new`](super::ErrorEventLayer::new).
    #[must_use]
    pub fn layer() -> super::ErrorEventLayer {
        super::ErrorEventLayer::new()
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

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ErrorEvent<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Error: Into<BoxError>,
    ResBody: Body,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<ErrorEventBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        ResponseFuture::new(self.inner.call(req), self.max_error_body)
    }
}
