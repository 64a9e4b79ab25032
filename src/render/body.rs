use super::ClientApi;
use super::anthropic::AnthropicRenderer;
use super::chat::{ApiRenderer, ChatEvent, ErrorInfo};
use super::completions::CompletionsRenderer;
use super::gemini::GeminiRenderer;
use super::responses::ResponsesRenderer;
use crate::body_util::{poll_as_bytes, to_bytes};
use crate::error::BoxError;
use crate::standard::Frames;
use crate::standard::frame::{is_comment_only, is_error_data, untyped_data};
use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

/// The largest error body rewritten in the client's API shape; a larger one passes as sent.
const MAX_ERROR_BODY: usize = 256 * 1024;

pin_project! {
    /// Response body for [`Render`](super::Render): the standard stream in the client's API,
    /// an error body in its error shape, or the inner body untouched.
    pub struct RenderBody<B> {
        #[pin]
        inner: B,
        state: State,
    }
}

enum State {
    Pass,
    Stream(Box<Streaming>),
    ErrorBody(Box<ErrorBody>),
}

struct Streaming {
    api: ClientApi,
    mode: Mode,
    out: Frames,
    inner_done: bool,
    /// An event not yet ended by its blank line (frames that are not one whole event each:
    /// the layer used without the reframer).
    partial: BytesMut,
}

enum Mode {
    /// No event seen yet.
    Unknown,
    /// A standard chat stream, rendered.
    Render(Renderer),
    /// Already in the client's API: passed on, standard error events rewritten.
    Native,
    /// Ended: nothing more is read.
    Ended,
}

struct ErrorBody {
    api: ClientApi,
    status: u16,
    buffer: BytesMut,
    /// Too large to rewrite: the buffer goes out as it is, then the rest of the body.
    passing: bool,
    done: bool,
}

enum Renderer {
    Completions(CompletionsRenderer),
    Responses(Box<ResponsesRenderer>),
    Anthropic(AnthropicRenderer),
    Gemini(GeminiRenderer),
}

impl Renderer {
    fn for_api(api: ClientApi) -> Option<Self> {
        Some(match api {
            ClientApi::ChatCompletions => return None,
            ClientApi::Completions => Renderer::Completions(CompletionsRenderer::new()),
            ClientApi::Responses => Renderer::Responses(Box::new(ResponsesRenderer::new())),
            ClientApi::AnthropicMessages => Renderer::Anthropic(AnthropicRenderer::new()),
            ClientApi::Gemini => Renderer::Gemini(GeminiRenderer::new()),
        })
    }

    fn get(&mut self) -> &mut dyn ApiRenderer {
        match self {
            Renderer::Completions(r) => r,
            Renderer::Responses(r) => r.as_mut(),
            Renderer::Anthropic(r) => r,
            Renderer::Gemini(r) => r,
        }
    }
}

impl<B> RenderBody<B> {
    /// Passes `inner` through untouched.
    pub(crate) fn pass(inner: B) -> Self {
        RenderBody {
            inner,
            state: State::Pass,
        }
    }

    /// Renders the standard stream `inner` in `api`.
    pub(crate) fn stream(inner: B, api: ClientApi) -> Self {
        if api == ClientApi::ChatCompletions {
            return Self::pass(inner);
        }
        RenderBody {
            inner,
            state: State::Stream(Box::new(Streaming {
                api,
                mode: Mode::Unknown,
                out: Frames::new(),
                inner_done: false,
                partial: BytesMut::new(),
            })),
        }
    }

    /// Rewrites the error body `inner` (a JSON error with `status`) in `api`'s error shape.
    pub(crate) fn error(inner: B, api: ClientApi, status: u16) -> Self {
        if matches!(
            api,
            ClientApi::ChatCompletions | ClientApi::Completions | ClientApi::Responses
        ) {
            return Self::pass(inner);
        }
        RenderBody {
            inner,
            state: State::ErrorBody(Box::new(ErrorBody {
                api,
                status,
                buffer: BytesMut::new(),
                passing: false,
                done: false,
            })),
        }
    }
}

impl Streaming {
    /// Splits `data` into whole events (`…\n\n`): a frame that is one event, as the reframer
    /// gives them, is passed on as it is.
    fn on_data(&mut self, mut data: Bytes) {
        if self.partial.is_empty()
            && data.ends_with(b"\n\n")
            && memchr::memmem::find(&data[..data.len() - 1], b"\n\n").is_none()
        {
            return self.on_frame(data);
        }
        if !self.partial.is_empty() {
            self.partial.extend_from_slice(&data);
            data = std::mem::take(&mut self.partial).freeze();
        }
        while let Some(at) = memchr::memmem::find(&data, b"\n\n") {
            let event = data.split_to(at + 2);
            self.on_frame(event);
        }
        if !data.is_empty() {
            self.partial.extend_from_slice(&data);
        }
    }

    fn on_frame(&mut self, frame: Bytes) {
        if is_comment_only(&frame) {
            // Gemini's SDKs read every line as JSON: comments (keep-alives, an upstream's
            // "processing" notes) would break them.
            if !matches!(self.mode, Mode::Ended) && self.api != ClientApi::Gemini {
                self.out.push(frame);
            }
            return;
        }
        if matches!(self.mode, Mode::Unknown) {
            self.mode = match ChatEvent::read(&frame) {
                ChatEvent::Other => Mode::Native,
                // Text completions from an upstream that has them: already the client's API
                // (their `logprobs` and every other field kept).
                ChatEvent::Chunk(chunk)
                    if self.api == ClientApi::Completions && chunk.object == "text_completion" =>
                {
                    Mode::Native
                }
                _ => match Renderer::for_api(self.api) {
                    Some(renderer) => Mode::Render(renderer),
                    None => Mode::Native,
                },
            };
        }
        match &mut self.mode {
            Mode::Render(renderer) => {
                let renderer = renderer.get();
                let ended = match ChatEvent::read(&frame) {
                    ChatEvent::Chunk(chunk) => {
                        renderer.chunk(&chunk, &mut self.out);
                        false
                    }
                    ChatEvent::Done => {
                        renderer.done(&mut self.out);
                        true
                    }
                    ChatEvent::Error(error) => {
                        renderer.error(&error, &mut self.out);
                        true
                    }
                    ChatEvent::Other => {
                        tracing::debug!(
                            frame = %String::from_utf8_lossy(&frame[..frame.len().min(200)]),
                            "not a chat event in a chat stream: not rendered"
                        );
                        false
                    }
                };
                if ended {
                    self.mode = Mode::Ended;
                }
            }
            Mode::Native => {
                // The standard error object (with a `type`), not the API's own error.
                let error = untyped_data(&frame)
                    .filter(|data| is_error_data(data))
                    .and_then(|data| serde_json::from_slice::<serde_json::Value>(data).ok())
                    .filter(|error| error["error"].get("type").is_some());
                match (error, Renderer::for_api(self.api)) {
                    (Some(error), Some(mut renderer))
                        if matches!(self.api, ClientApi::AnthropicMessages | ClientApi::Gemini) =>
                    {
                        renderer
                            .get()
                            .error(&ErrorInfo::from_body(&error), &mut self.out);
                        self.mode = Mode::Ended;
                    }
                    _ => self.out.push(frame),
                }
            }
            Mode::Unknown | Mode::Ended => {}
        }
    }

    /// The inner body ended: a rendered stream that did not end was cut off.
    fn on_end(&mut self) {
        self.inner_done = true;
        if let Mode::Render(renderer) = &mut self.mode {
            renderer.get().error(
                &ErrorInfo::new(
                    "upstream_error",
                    "stream_truncated",
                    "the stream ended before its last event".to_owned(),
                ),
                &mut self.out,
            );
            self.mode = Mode::Ended;
        }
    }
}

impl ErrorBody {
    fn rewritten(&mut self) -> Bytes {
        let body = std::mem::take(&mut self.buffer);
        let info = match serde_json::from_slice::<serde_json::Value>(&body) {
            Ok(value) => ErrorInfo::from_body(&value),
            Err(_) => ErrorInfo::new(
                "upstream_error",
                "upstream_error",
                String::from_utf8_lossy(&body).into_owned(),
            ),
        };
        super::whole::api_error_body(self.api, self.status, &info)
    }
}

impl<B> Body for RenderBody<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        match this.state {
            State::Pass => poll_as_bytes(this.inner, cx),
            State::Stream(st) => loop {
                if let Some(frame) = st.out.pop() {
                    return Poll::Ready(Some(Ok(Frame::data(frame))));
                }
                if st.inner_done || matches!(st.mode, Mode::Ended) {
                    return Poll::Ready(None);
                }
                match ready!(this.inner.as_mut().poll_frame(cx)) {
                    Some(Ok(frame)) => match frame.into_data() {
                        Ok(data) => st.on_data(to_bytes(data)),
                        Err(frame) => return Poll::Ready(Some(Ok(frame.map_data(to_bytes)))),
                    },
                    Some(Err(err)) => return Poll::Ready(Some(Err(err.into()))),
                    None => st.on_end(),
                }
            },
            State::ErrorBody(st) => loop {
                if st.done {
                    return Poll::Ready(None);
                }
                if st.passing {
                    if !st.buffer.is_empty() {
                        let buffered = std::mem::take(&mut st.buffer).freeze();
                        return Poll::Ready(Some(Ok(Frame::data(buffered))));
                    }
                    return poll_as_bytes(this.inner, cx);
                }
                match ready!(this.inner.as_mut().poll_frame(cx)) {
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            st.buffer.extend_from_slice(&to_bytes(data));
                            st.passing = st.buffer.len() > MAX_ERROR_BODY;
                        }
                    }
                    Some(Err(err)) => return Poll::Ready(Some(Err(err.into()))),
                    None => {
                        st.done = true;
                        return Poll::Ready(Some(Ok(Frame::data(st.rewritten()))));
                    }
                }
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.state {
            State::Pass => self.inner.is_end_stream(),
            State::Stream(st) => {
                st.out.is_empty() && (st.inner_done || matches!(st.mode, Mode::Ended))
            }
            State::ErrorBody(st) => st.done,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.state {
            State::Pass => self.inner.size_hint(),
            _ => SizeHint::default(),
        }
    }
}

impl<B> std::fmt::Debug for RenderBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::Pass => "pass",
            State::Stream(_) => "stream",
            State::ErrorBody(_) => "error_body",
        };
        f.debug_struct("RenderBody").field("state", &state).finish()
    }
}
