use super::{ClientApi, ResponseFuture};
use http::{Request, Response};
use std::task::{Context, Poll};
use tower_service::Service;

/// Middleware that renders the standard chat stream in the client's API.
/// See the [module docs](crate::render).
#[derive(Debug, Clone)]
pub struct Render<S> {
    pub(crate) inner: S,
    pub(crate) default_api: ClientApi,
}

impl<S> Render<S> {
    /// Wraps `inner`; requests without a [`ClientApi`] extension are OpenAI chat.
    pub fn new(inner: S) -> Self {
        Render {
            inner,
            default_api: ClientApi::default(),
        }
    }

    /// The layer that applies this middleware: [`RenderLayer::new`](super::RenderLayer::new).
    #[must_use]
    pub fn layer() -> super::RenderLayer {
        super::RenderLayer::new()
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

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Render<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<super::RenderBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let api = req
            .extensions()
            .get::<ClientApi>()
            .copied()
            .unwrap_or(self.default_api);
        ResponseFuture {
            inner: self.inner.call(req),
            api,
        }
    }
}
