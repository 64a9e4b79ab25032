use super::body::ResumeBody;
use super::produce::produce;
use super::{Producers, Resumable, StreamStore};
use http::{Request, Response};
use http_body::Body;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tower_service::Service;

/// Middleware that makes the streams of requests with a [`Resumable`] extension resumable.
/// See the [module docs](crate::resume).
#[derive(Debug, Clone)]
pub struct Resume<S, St> {
    pub(super) inner: S,
    pub(super) store: St,
    pub(super) ttl: Duration,
    pub(super) producers: Option<Producers>,
}

/// The response body of [`Resume`]: the inner body as it is, or, for a resumable stream, a
/// reader of the store.
#[derive(Debug)]
pub enum ResumeResponseBody<B, St> {
    /// Not resumable: the inner body.
    Direct(B),
    /// Resumable: read from the store, each event numbered as its [`Resumable`] asked.
    Stored(ResumeBody<St>),
}

impl<B, St> Body for ResumeResponseBody<B, St>
where
    B: Body<Data = bytes::Bytes> + Unpin,
    B::Error: Into<crate::BoxError>,
    St: StreamStore,
{
    type Data = bytes::Bytes;
    type Error = crate::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<bytes::Bytes>, crate::BoxError>>> {
        match self.get_mut() {
            ResumeResponseBody::Direct(body) => Pin::new(body)
                .poll_frame(cx)
                .map(|f| f.map(|f| f.map_err(Into::into))),
            ResumeResponseBody::Stored(body) => Pin::new(body)
                .poll_frame(cx)
                .map(|f| f.map(|f| f.map_err(Into::into))),
        }
    }
}

impl<S, St, ReqBody, ResBody> Service<Request<ReqBody>> for Resume<S, St>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: Body<Data = bytes::Bytes> + Unpin + Send + 'static,
    ResBody::Error: std::fmt::Display + Send + 'static,
    St: StreamStore,
{
    type Response = Response<ResumeResponseBody<ResBody, St>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let resumable = req.extensions().get::<Resumable>().cloned();
        let future = self.inner.call(req);
        let (store, ttl) = (self.store.clone(), self.ttl);
        let producers = self.producers.clone();
        Box::pin(async move {
            let response = future.await?;
            let Some(Resumable { id, numbering }) = resumable else {
                return Ok(response.map(ResumeResponseBody::Direct));
            };
            let stream =
                response.status().is_success() && crate::sse::is_event_stream(response.headers());
            if !stream {
                return Ok(response.map(ResumeResponseBody::Direct));
            }
            if let Err(e) = store.create(&id, ttl).await {
                tracing::warn!(stream = %id, error = %e, "the stream cannot be made resumable: served as it comes");
                return Ok(response.map(ResumeResponseBody::Direct));
            }
            let (mut parts, body) = response.into_parts();
            parts.headers.remove(http::header::CONTENT_LENGTH);
            // Runs to the end whoever reads it: a client that goes does not stop it.
            let running = producers.as_ref().map(|p| p.start(&id));
            let stop = running.as_ref().map(|r| r.stop.clone());
            let (producer_store, producer_id) = (store.clone(), id.clone());
            tokio::spawn(async move {
                produce(producer_store, producer_id, body, stop).await;
                drop(running);
            });
            let body = ResumeBody::new(store, id, 0).numbering(numbering);
            Ok(Response::from_parts(
                parts,
                ResumeResponseBody::Stored(body),
            ))
        })
    }
}
