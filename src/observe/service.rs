use super::record::{ClientStall, Recorder, request_span};
use super::{ObserveBody, OnStreamEnd, ResponseFuture};
use crate::labels::StreamLabels;
use http::{Request, Response};
use std::task::{Context, Poll};
use tower_service::Service;

/// Middleware that summarizes each stream once it ends. See the [module docs](crate::observe).
#[derive(Debug, Clone)]
pub struct Observe<S, C = ()> {
    pub(super) inner: S,
    pub(super) on_end: C,
}

impl<S> Observe<S> {
    /// Wraps `inner`, with no callback.
    pub fn new(inner: S) -> Self {
        Observe { inner, on_end: () }
    }

    /// The layer that applies this middleware: [`ObserveLayer::new`](super::ObserveLayer::new).
    pub fn layer() -> super::ObserveLayer {
        super::ObserveLayer::new()
    }
}

impl<S, C> Observe<S, C> {
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

impl<S, C, ReqBody, ResBody> Service<Request<ReqBody>> for Observe<S, C>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Error: std::fmt::Display,
    C: OnStreamEnd,
{
    type Response = Response<ObserveBody<ResBody, C>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let labels = req.extensions().get::<StreamLabels>().cloned();
        let stall = req.extensions().get::<ClientStall>().cloned();
        let started = tokio::time::Instant::now();
        let span = request_span(labels.as_ref());
        let future = {
            let _entered = span.enter();
            self.inner.call(req)
        };
        let mut recorder = Recorder::new(span, labels, started, self.on_end.clone());
        recorder.stall = stall;
        ResponseFuture::new(future, recorder)
    }
}
