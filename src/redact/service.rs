use super::{RedactBody, ResponseFuture, Secrets};
use crate::error::BoxError;
use http::{Request, Response};
use http_body::Body;
use std::task::{Context, Poll};
use tower_service::Service;

/// Middleware that replaces every configured secret in response bodies with `[redacted]`.
/// See the [module docs](crate::redact).
///
/// ```
/// use tower_llm_stream::redact::{Redact, Secrets};
///
/// let upstream = tower::service_fn(|_req: http::Request<()>| async {
///     Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
/// });
/// let service = Redact::new(upstream, Secrets::new(["sk-abcdefgh"]));
/// # let _ = service;
/// ```
#[derive(Debug, Clone)]
pub struct Redact<S> {
    pub(super) inner: S,
    pub(super) secrets: Secrets,
}

impl<S> Redact<S> {
    /// Wraps `inner`, redacting `secrets`.
    ///
    /// ```
    /// use tower_llm_stream::redact::{Redact, Secrets};
    ///
    /// let service = Redact::new(tower::service_fn(|_req: http::Request<()>| async {
    ///     Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
    /// }), Secrets::new(["sk-abcdefgh"]));
    /// # let _ = service;
    /// ```
    pub fn new(inner: S, secrets: Secrets) -> Self {
        Redact { inner, secrets }
    }

    /// The layer that applies this middleware: [`RedactLayer::new`](super::RedactLayer::new).
    ///
    /// ```
    /// let layer = tower_llm_stream::redact::Redact::<()>::layer(["sk-abcdefgh"]);
    /// assert_eq!(layer.secrets().len(), 1);
    /// ```
    pub fn layer(secrets: impl IntoIterator<Item = impl AsRef<[u8]>>) -> super::RedactLayer {
        super::RedactLayer::new(secrets)
    }

    /// The wrapped service.
    ///
    /// ```
    /// use tower_llm_stream::redact::{Redact, Secrets};
    ///
    /// let service = Redact::new(7, Secrets::default());
    /// assert_eq!(*service.get_ref(), 7);
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    ///
    /// ```
    /// use tower_llm_stream::redact::{Redact, Secrets};
    ///
    /// let mut service = Redact::new(7, Secrets::default());
    /// *service.get_mut() = 8;
    /// assert_eq!(*service.get_ref(), 8);
    /// ```
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Consumes the middleware, returning the wrapped service.
    ///
    /// ```
    /// use tower_llm_stream::redact::{Redact, Secrets};
    ///
    /// assert_eq!(Redact::new(7, Secrets::default()).into_inner(), 7);
    /// ```
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Redact<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Body,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<RedactBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        ResponseFuture::new(self.inner.call(req), self.secrets.clone())
    }
}
