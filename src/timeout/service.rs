use super::layer::TimeoutConfig;
use super::{ResponseFuture, StreamTimeouts, TimeoutBody, parse_seconds};
use crate::body_util::json_error_response;
use http::{Request, Response, StatusCode};
use std::task::{Context, Poll};
use tower_service::Service;

/// Middleware that enforces head, idle and total timeouts on streaming responses.
/// See the [module docs](crate::timeout).
#[derive(Debug, Clone)]
pub struct StreamTimeout<S> {
    pub(crate) inner: S,
    pub(crate) config: TimeoutConfig,
}

impl<S> StreamTimeout<S> {
    /// Wraps `inner` with the default timeouts (30 s for the head and between events).
    pub fn new(inner: S) -> Self {
        tower_layer::Layer::layer(&super::StreamTimeoutLayer::new(), inner)
    }

    /// The layer that applies this middleware: [`StreamTimeoutLayer::new`](super::StreamTimeoutLayer::new).
    #[must_use]
    pub fn layer() -> super::StreamTimeoutLayer {
        super::StreamTimeoutLayer::new()
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

    /// The timeouts for this request: its extension, else its header, else the defaults.
    fn timeouts_for<B>(&self, req: &Request<B>) -> Result<StreamTimeouts, String> {
        if let Some(timeouts) = req.extensions().get::<StreamTimeouts>() {
            return Ok(*timeouts);
        }
        let mut timeouts = self.config.timeouts;
        if let Some((name, max)) = &self.config.header {
            if let Some(value) = req.headers().get(name) {
                let Some(wanted) = parse_seconds(value.as_bytes()) else {
                    return Err(format!(
                        "invalid {name} header {:?}: expected a number of seconds of at least 0.001, e.g. 30 or 2.5",
                        String::from_utf8_lossy(value.as_bytes())
                    ));
                };
                let timeout = wanted.min(*max);
                timeouts.head = Some(timeout);
                timeouts.idle = Some(timeout);
            }
        }
        Ok(timeouts)
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for StreamTimeout<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<TimeoutBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        match self.timeouts_for(&req) {
            Ok(timeouts) => ResponseFuture::waiting(
                self.inner.call(req),
                timeouts,
                self.config.keep_alive,
                self.config.shutdown.clone(),
            ),
            Err(message) => {
                tracing::debug!(%message, "rejected request timeout header");
                let response = json_error_response(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    "invalid_request_timeout",
                    &message,
                );
                ResponseFuture::rejected(response)
            }
        }
    }
}
