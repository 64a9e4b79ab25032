use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

pin_project! {
    /// Response body for [`Fallback`](super::Fallback): the serving attempt's body, after the
    /// frames held back until its commit.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http_body_util::{BodyExt, Full};
    /// use tower::ServiceExt;
    /// use tower_llm_stream::fallback::Fallback;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let upstream = tower::service_fn(|_req: http::Request<()>| async {
    ///     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from("as is"))))
    /// });
    /// let response = Fallback::new(upstream).oneshot(http::Request::new(())).await.unwrap();
    /// assert_eq!(response.into_body().collect().await.unwrap().to_bytes(), "as is");
    /// # }
    /// ```
    pub struct FallbackBody<B: Body> {
        #[pin]
        kind: Kind<B, B::Error>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B, E> {
        // No fallback, or one that committed at its head: the body as it is.
        Direct { #[pin] inner: B },
        // Read before the commit: the frames held back, then the rest.
        Held {
            held: VecDeque<Frame<Bytes>>,
            // An error read before the commit, after the held frames.
            error: Option<E>,
            // `None` once it has ended.
            inner: Option<Pin<Box<B>>>,
        },
    }
}

impl<B: Body> FallbackBody<B> {
    pub(super) fn direct(inner: B) -> Self {
        FallbackBody {
            kind: Kind::Direct { inner },
        }
    }

    pub(super) fn held(
        held: VecDeque<Frame<Bytes>>,
        error: Option<B::Error>,
        inner: Option<Pin<Box<B>>>,
    ) -> Self {
        FallbackBody {
            kind: Kind::Held { held, error, inner },
        }
    }
}

impl<B> Body for FallbackBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match self.project().kind.project() {
            KindProj::Direct { inner } => inner.poll_frame(cx),
            KindProj::Held { held, error, inner } => {
                if let Some(frame) = held.pop_front() {
                    return Poll::Ready(Some(Ok(frame)));
                }
                if let Some(error) = error.take() {
                    return Poll::Ready(Some(Err(error)));
                }
                match inner {
                    Some(body) => body.as_mut().poll_frame(cx),
                    None => Poll::Ready(None),
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Direct { inner } => inner.is_end_stream(),
            Kind::Held { held, error, inner } => {
                held.is_empty()
                    && error.is_none()
                    && inner.as_ref().is_none_or(|b| b.is_end_stream())
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Direct { inner } => inner.size_hint(),
            Kind::Held { held, inner, .. } => {
                let held: u64 = held
                    .iter()
                    .filter_map(|f| f.data_ref().map(|d| d.len() as u64))
                    .sum();
                let mut hint = inner
                    .as_ref()
                    .map(|b| b.size_hint())
                    .unwrap_or_else(|| SizeHint::with_exact(0));
                hint.set_lower(hint.lower() + held);
                if let Some(upper) = hint.upper() {
                    hint.set_upper(upper + held);
                }
                hint
            }
        }
    }
}
