use super::future::Plan;
use super::{FallbackBody, FallbackTargets, ResponseFuture};
use crate::labels::StreamLabels;
use http::{Request, Response};
use http_body::Body;
use std::task::{Context, Poll};
use tower_service::Service;

/// Middleware that tries a request's fallback targets until one commits. See the
/// [module docs](crate::fallback).
///
/// ```
/// use tower_llm_stream::fallback::Fallback;
///
/// let service = Fallback::new(tower::service_fn(|_req: http::Request<()>| async {
///     Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
/// }));
/// # let _ = service;
/// ```
#[derive(Debug, Clone)]
pub struct Fallback<S> {
    pub(super) inner: S,
    pub(super) max_held: usize,
}

impl<S> Fallback<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Fallback {
            inner,
            max_held: super::layer::DEFAULT_MAX_HELD,
        }
    }

    /// The layer that applies this middleware: [`FallbackLayer::new`](super::FallbackLayer::new).
    pub fn layer() -> super::FallbackLayer {
        super::FallbackLayer::new()
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

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Fallback<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    S::Error: std::fmt::Display,
    ReqBody: 'static,
    ResBody: Body<Data = bytes::Bytes>,
{
    type Response = Response<FallbackBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, S, ReqBody, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let targets = req
            .extensions_mut()
            .remove::<FallbackTargets<ReqBody>>()
            .filter(|targets| !targets.is_empty());
        let Some(targets) = targets else {
            return ResponseFuture::new(self.inner.call(req), None);
        };
        // The clone tries the next targets; the service that was made ready takes this one.
        let service = self.inner.clone();
        let labels = req.extensions().get::<StreamLabels>().cloned();
        let future = self.inner.call(req);
        let plan = Plan::new(service, targets, labels, self.max_held);
        ResponseFuture::new(future, Some(Box::new(plan)))
    }
}
