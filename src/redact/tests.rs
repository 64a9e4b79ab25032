use super::{REDACTED, RedactBody, RedactLayer, Secrets};
use crate::error::BoxError;
use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Full, StreamBody};
use std::pin::pin;
use std::task::{Context, Poll};
use tower::{ServiceBuilder, ServiceExt};

const KEY: &str = "sk-abc-12345678";
const LONG_KEY: &str = "sk-abc-12345678-long";
const TAIL_KEY: &str = "12345678-xyz00";
const SELF_OVERLAPPING: &str = "ab-ab-ab-ab-x";
/// Starts where `KEY` ends: `KEY` followed by a prefix of it is kept back after a match that
/// began before the kept-back tail (the tail first found was a prefix of `TAIL_KEY`).
const AFTER_KEY: &str = "-xyz00-dash";

const ALL: [&str; 5] = [KEY, LONG_KEY, TAIL_KEY, SELF_OVERLAPPING, AFTER_KEY];

/// One item of a body, as the client sees it.
#[derive(Debug, Clone, PartialEq)]
enum Item {
    Data(Bytes),
    Trailers(HeaderMap),
    Error(String),
}

type Input = Result<Frame<Bytes>, std::io::Error>;

fn data(text: impl Into<Bytes>) -> Input {
    Ok(Frame::data(text.into()))
}

fn body_of(items: Vec<Input>) -> StreamBody<stream::Iter<std::vec::IntoIter<Input>>> {
    StreamBody::new(stream::iter(items))
}

/// Polls `body` to its end; it must never be pending.
fn drain<B>(body: B) -> Vec<Item>
where
    B: Body<Data = Bytes, Error = BoxError>,
{
    let mut body = pin!(body);
    let waker = futures_util::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    let mut items = Vec::new();
    loop {
        match body.as_mut().poll_frame(&mut cx) {
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) => items.push(Item::Data(data)),
                Err(frame) => items.push(Item::Trailers(frame.into_trailers().unwrap())),
            },
            Poll::Ready(Some(Err(err))) => {
                items.push(Item::Error(err.to_string()));
                break;
            }
            Poll::Ready(None) => break,
            Poll::Pending => panic!("the body is pending"),
        }
    }
    items
}

/// The data of a redacted body made of `frames`, concatenated; no frame is empty.
fn redact_frames(secrets: &Secrets, frames: &[&[u8]]) -> Vec<u8> {
    let input = frames
        .iter()
        .map(|frame| data(Bytes::copy_from_slice(frame)))
        .collect();
    let mut out = Vec::new();
    for item in drain(RedactBody::new(body_of(input), secrets)) {
        match item {
            Item::Data(data) => {
                assert!(!data.is_empty(), "an empty data frame");
                out.extend_from_slice(&data);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    out
}

/// A body fed by the test, one frame at a time: pending while it has none.
#[derive(Default, Clone)]
struct Feed {
    frames: std::rc::Rc<std::cell::RefCell<std::collections::VecDeque<Bytes>>>,
    closed: std::rc::Rc<std::cell::Cell<bool>>,
}

impl Body for Feed {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        match self.frames.borrow_mut().pop_front() {
            Some(frame) => Poll::Ready(Some(Ok(Frame::data(frame)))),
            None if self.closed.get() => Poll::Ready(None),
            None => Poll::Pending,
        }
    }
}

/// Feeds `frames` one at a time; after each, what the redacted body has sent so far.
fn redact_step_by_step(secrets: &Secrets, frames: &[&[u8]]) -> Vec<Vec<u8>> {
    let feed = Feed::default();
    let mut body = pin!(RedactBody::new(feed.clone(), secrets));
    let waker = futures_util::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    let mut out = Vec::new();
    let mut steps = Vec::new();
    for (i, frame) in frames.iter().enumerate() {
        feed.frames
            .borrow_mut()
            .push_back(Bytes::copy_from_slice(frame));
        feed.closed.set(i + 1 == frames.len());
        loop {
            match body.as_mut().poll_frame(&mut cx) {
                Poll::Ready(Some(Ok(frame))) => out.extend_from_slice(&frame.into_data().unwrap()),
                Poll::Ready(Some(Err(err))) => panic!("{err}"),
                Poll::Ready(None) | Poll::Pending => break,
            }
        }
        steps.push(out.clone());
    }
    steps
}

/// Leftmost-longest replacement, the naive way: the reference.
fn reference(secrets: &[&str], input: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < input.len() {
        let longest = secrets
            .iter()
            .filter(|s| s.trim_ascii().len() >= 8 && input[at..].starts_with(s.as_bytes()))
            .map(|s| s.len())
            .max();
        match longest {
            Some(len) => {
                out.extend_from_slice(REDACTED.as_bytes());
                at += len;
            }
            None => {
                out.push(input[at]);
                at += 1;
            }
        }
    }
    out
}

#[test]
fn a_secret_in_one_frame() {
    let secrets = Secrets::new([KEY]);
    let frame =
        format!("data: {{\"error\":{{\"message\":\"Incorrect API key provided: {KEY}\"}}}}\n\n");
    let items = drain(RedactBody::new(body_of(vec![data(frame)]), &secrets));
    assert_eq!(
        items,
        [Item::Data(Bytes::from(
            "data: {\"error\":{\"message\":\"Incorrect API key provided: [redacted]\"}}\n\n"
        ))]
    );
}

#[test]
fn a_secret_split_across_two_and_three_frames_at_every_point() {
    let secrets = Secrets::new(ALL);
    let input = format!("data: {{\"message\":\"key {KEY} and {LONG_KEY}, {KEY}-xyz00\"}}\n\n");
    let input = input.as_bytes();
    let expected = reference(&ALL, input);
    assert_eq!(
        expected,
        &b"data: {\"message\":\"key [redacted] and [redacted], [redacted]-xyz00\"}\n\n"[..]
    );
    for i in 0..=input.len() {
        assert_eq!(
            redact_frames(&secrets, &[&input[..i], &input[i..]]),
            expected,
            "split at {i}"
        );
        for j in i..=input.len() {
            assert_eq!(
                redact_frames(&secrets, &[&input[..i], &input[i..j], &input[j..]]),
                expected,
                "split at {i} and {j}"
            );
        }
    }
}

#[test]
fn a_match_into_the_kept_back_tail() {
    let secrets = Secrets::new(ALL);
    // "12345678-xyz0" could start `TAIL_KEY`, but `KEY` matches first and runs into it: what
    // is kept back is then "-xyz0", which could start `AFTER_KEY`.
    let input = format!("{KEY}-xyz0");
    let out = drain(RedactBody::new(
        body_of(vec![data(input), data("0-dash!")]),
        &secrets,
    ));
    assert_eq!(
        out,
        [
            Item::Data(Bytes::from("[redacted]")),
            Item::Data(Bytes::from("[redacted]!"))
        ]
    );
}

#[test]
fn a_secret_byte_by_byte() {
    let secrets = Secrets::new(ALL);
    let input = format!("{SELF_OVERLAPPING}ab-ab-ab-ab-ab-x {LONG_KEY}");
    let frames: Vec<&[u8]> = input.as_bytes().chunks(1).collect();
    assert_eq!(
        redact_frames(&secrets, &frames),
        b"[redacted]ab-[redacted] [redacted]"
    );
}

#[test]
fn a_body_ending_with_a_partial_secret_is_flushed_unchanged() {
    let secrets = Secrets::new(ALL);
    // Every proper prefix of every secret, after some text and in frames of its own.
    for secret in ALL {
        for len in 1..secret.len() {
            let prefix = &secret.as_bytes()[..len];
            let items = drain(RedactBody::new(
                body_of(vec![data("text "), data(Bytes::copy_from_slice(prefix))]),
                &secrets,
            ));
            let joined: Vec<u8> = items
                .iter()
                .flat_map(|item| match item {
                    Item::Data(data) => data.to_vec(),
                    other => panic!("unexpected {other:?}"),
                })
                .collect();
            // Unchanged, but where the prefix of a longer secret is itself a secret.
            let expected = [&b"text "[..], &reference(&ALL, prefix)].concat();
            assert_eq!(joined, expected);
            if !ALL.iter().any(|s| prefix.starts_with(s.as_bytes())) {
                assert_eq!(joined, [&b"text "[..], prefix].concat());
            }
        }
    }
    // A body that knows it has ended (hyper polls no further): nothing is kept back.
    let mut body = pin!(RedactBody::new(
        Full::new(Bytes::from("key sk-abc-1234")),
        &secrets
    ));
    assert!(!body.is_end_stream());
    let waker = futures_util::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    let Poll::Ready(Some(Ok(frame))) = body.as_mut().poll_frame(&mut cx) else {
        panic!("no frame")
    };
    assert_eq!(frame.into_data().unwrap(), "key sk-abc-1234");
    assert!(body.is_end_stream());
    assert_eq!(body.size_hint().exact(), Some(0));
}

#[test]
fn overlapping_secrets_leftmost_longest() {
    let secrets = Secrets::new(ALL);
    // A prefix of a longer secret: the longer one.
    assert_eq!(secrets.redact_str(&format!("{LONG_KEY}!")), "[redacted]!");
    // Two secrets overlapping: the leftmost, then the search goes on after it.
    assert_eq!(
        secrets.redact_str(&format!("{KEY}-xyz00")),
        "[redacted]-xyz00"
    );
    assert_eq!(
        secrets.redact_str("sk-abc-12345678-xyz00"),
        "[redacted]-xyz00"
    );
    assert_eq!(secrets.redact_str("x12345678-xyz00"), "x[redacted]");
    // A secret that overlaps itself.
    assert_eq!(secrets.redact_str("ab-ab-ab-ab-ab-x"), "ab-[redacted]");
    // The same through frames split inside the overlap.
    let input = format!("{KEY}-xyz00 | ab-ab-ab-ab-ab-x | {KEY}-lon");
    let input = input.as_bytes();
    let expected = reference(&ALL, input);
    assert_eq!(
        expected,
        b"[redacted]-xyz00 | ab-[redacted] | [redacted]-lon"
    );
    for i in 0..=input.len() {
        assert_eq!(
            redact_frames(&secrets, &[&input[..i], &input[i..]]),
            expected
        );
    }
}

#[test]
fn short_and_empty_secrets_are_ignored() {
    let secrets = Secrets::new(["", "1234567", "  \n", " 1234567\n"]);
    assert!(secrets.is_empty());
    assert_eq!(secrets.len(), 0);
    assert_eq!(secrets.redact_str("1234567"), "1234567");
    // Whitespace around a secret is not part of it.
    let secrets = Secrets::new(["12345678\n"]);
    assert_eq!(secrets.redact_str("a 12345678\n"), "a [redacted]\n");
}

#[test]
fn without_secrets_frames_pass_as_the_same_bytes() {
    for secrets in [Secrets::default(), Secrets::new(["short", ""])] {
        let frame = Bytes::from(format!("data: {KEY}"));
        let pointer = frame.as_ptr();
        let items = drain(RedactBody::new(
            body_of(vec![Ok(Frame::data(frame))]),
            &secrets,
        ));
        let [Item::Data(out)] = &items[..] else {
            panic!("{items:?}")
        };
        assert_eq!(out.as_ptr(), pointer);
        assert_eq!(*out, format!("data: {KEY}"));
    }
}

#[test]
fn a_frame_without_a_secret_passes_as_the_same_bytes() {
    let secrets = Secrets::new(ALL);
    let first = Bytes::from("data: {\"choices\":[{\"delta\":{\"content\":\"sk-abc\"}}]}\n\n");
    let second = Bytes::from("data: [DONE]\n\n");
    let pointers = [first.as_ptr(), second.as_ptr()];
    let items = drain(RedactBody::new(
        body_of(vec![Ok(Frame::data(first)), Ok(Frame::data(second))]),
        &secrets,
    ));
    let [Item::Data(a), Item::Data(b)] = &items[..] else {
        panic!("{items:?}")
    };
    assert_eq!([a.as_ptr(), b.as_ptr()], pointers);
    // A frame that ends with what could start a secret is sent but for that tail: a slice.
    let frame = Bytes::from("text sk-abc");
    let pointer = frame.as_ptr();
    let items = drain(RedactBody::new(
        body_of(vec![Ok(Frame::data(frame)), data("-9")]),
        &secrets,
    ));
    assert_eq!(
        items,
        [
            Item::Data(Bytes::from("text ")),
            Item::Data(Bytes::from("sk-abc-9"))
        ]
    );
    let Item::Data(first) = &items[0] else {
        unreachable!()
    };
    assert_eq!(first.as_ptr(), pointer);
}

#[test]
fn an_sse_frame_is_not_kept_back() {
    let secrets = Secrets::new(ALL);
    // The second frame never comes: the first must be out whole without it.
    let first: Input = data(format!("data: {{\"error\":\"{KEY}\"}}\n\n"));
    let body = StreamBody::new(stream::iter([first]).chain(stream::pending()));
    let mut body = pin!(RedactBody::new(body, &secrets));
    let waker = futures_util::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    let Poll::Ready(Some(Ok(frame))) = body.as_mut().poll_frame(&mut cx) else {
        panic!("the first frame is not out")
    };
    assert_eq!(
        frame.into_data().unwrap(),
        "data: {\"error\":\"[redacted]\"}\n\n"
    );
    assert!(body.as_mut().poll_frame(&mut cx).is_pending());
}

#[test]
fn trailers_and_errors_come_after_the_kept_back_bytes() {
    let secrets = Secrets::new(ALL);
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    let items = drain(RedactBody::new(
        body_of(vec![
            data("a sk-abc"),
            Ok(Frame::trailers(trailers.clone())),
        ]),
        &secrets,
    ));
    assert_eq!(
        items,
        [
            Item::Data(Bytes::from("a ")),
            Item::Data(Bytes::from("sk-abc")),
            Item::Trailers(trailers.clone()),
        ]
    );
    // Nothing kept back: the trailers come as they are.
    let items = drain(RedactBody::new(
        body_of(vec![data("a\n"), Ok(Frame::trailers(trailers.clone()))]),
        &secrets,
    ));
    assert_eq!(
        items,
        [Item::Data(Bytes::from("a\n")), Item::Trailers(trailers)]
    );

    let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
    let items = drain(RedactBody::new(
        body_of(vec![data("b 12345678-x"), Err(reset)]),
        &secrets,
    ));
    assert_eq!(
        items,
        [
            Item::Data(Bytes::from("b ")),
            Item::Data(Bytes::from("12345678-x")),
            Item::Error("reset".to_owned()),
        ]
    );
}

#[test]
fn redact_str_and_bytes() {
    let layer = RedactLayer::new([KEY]);
    assert_eq!(
        layer.redact_str(&format!("key={KEY}&x=1")),
        "key=[redacted]&x=1"
    );
    assert!(matches!(
        layer.redact_str("nothing"),
        std::borrow::Cow::Borrowed(_)
    ));
    assert_eq!(
        layer
            .secrets()
            .redact_bytes(format!("{KEY}{KEY}").as_bytes()),
        &b"[redacted][redacted]"[..]
    );
    // A secret that is not UTF-8 may match inside a character: no panic, U+FFFD.
    let secrets = Secrets::new([&b"\xa9-abcdefgh"[..]]);
    assert_eq!(secrets.redact_str("café-abcdefgh"), "caf\u{fffd}[redacted]");
}

#[test]
fn debug_never_shows_the_secrets() {
    let layer = RedactLayer::new([KEY]);
    let service = layer.clone();
    let shown = format!(
        "{layer:?} {:?} {:?}",
        tower_layer::Layer::layer(&service, ()),
        RedactBody::new(Full::new(Bytes::new()), layer.secrets())
    );
    assert!(!shown.contains(KEY), "{shown}");
    assert!(!shown.contains("12345678"), "{shown}");
}

#[tokio::test]
async fn through_the_layer() {
    let upstream = tower::service_fn(|_req: Request<()>| async {
        let text = format!(
            "{{\"error\":{{\"message\":\"Incorrect API key provided: {KEY}. You can find your API key at https://platform.openai.com/account/api-keys.\"}}}}"
        );
        let (a, b) = text.split_at(text.find("12345678").unwrap());
        let body = body_of(vec![data(a.to_owned()), data(b.to_owned())]);
        Ok::<_, std::convert::Infallible>(
            Response::builder()
                .status(StatusCode::UNAUTHORIZED)
                .header("content-type", "application/json")
                .header("content-length", text.len())
                .body(body)
                .unwrap(),
        )
    });

    let service = ServiceBuilder::new()
        .layer(RedactLayer::new([KEY, "", "short"]))
        .service(upstream);
    let response = service.clone().oneshot(Request::new(())).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers().get("content-length").is_none());
    assert_eq!(response.headers()["content-type"], "application/json");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        body,
        "{\"error\":{\"message\":\"Incorrect API key provided: [redacted]. You can find your API key at https://platform.openai.com/account/api-keys.\"}}"
    );

    // Without secrets: a no-op, the length kept.
    let service = ServiceBuilder::new()
        .layer(RedactLayer::new(["", "short"]))
        .service(service.into_inner());
    let response = service.oneshot(Request::new(())).await.unwrap();
    let length: usize = response.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body.len(), length);
    assert!(body.windows(KEY.len()).any(|w| w == KEY.as_bytes()));
}

/// A piece of a generated body: a secret, a proper prefix of one (a near miss), or text made
/// of the secrets' bytes and newlines.
fn piece() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
    use proptest::prelude::*;
    prop_oneof![
        proptest::sample::select(ALL.to_vec()).prop_map(|s| s.as_bytes().to_vec()),
        (
            proptest::sample::select(ALL.to_vec()),
            any::<proptest::sample::Index>()
        )
            .prop_map(|(s, at)| s.as_bytes()[..1 + at.index(s.len() - 1)].to_vec()),
        proptest::collection::vec(
            proptest::sample::select(&b"sk-abc12345678xyz0dh\n "[..]),
            0..6
        ),
    ]
}

proptest::proptest! {
    /// However a body with secrets and near misses is split into frames, the output is the
    /// one-pass leftmost-longest replacement of the whole, and holds no secret.
    #[test]
    fn any_split_gives_the_one_pass_output(
        pieces in proptest::collection::vec(piece(), 0..12),
        cuts in proptest::collection::vec(proptest::prelude::any::<proptest::sample::Index>(), 0..6),
    ) {
        let input = pieces.concat();
        let mut cuts: Vec<usize> = cuts.iter().map(|cut| cut.index(input.len() + 1)).collect();
        cuts.sort_unstable();
        let mut frames = Vec::new();
        let mut from = 0;
        for cut in cuts.into_iter().chain([input.len()]) {
            frames.push(&input[from..cut]);
            from = cut;
        }
        let secrets = Secrets::new(ALL);
        let expected = reference(&ALL, &input);
        proptest::prop_assert_eq!(&secrets.redact_bytes(&input)[..], &expected[..]);
        let out = redact_frames(&secrets, &frames);
        proptest::prop_assert_eq!(&out, &expected);
        // Streaming: after a frame that ends a line (an SSE event), everything is out.
        let steps = redact_step_by_step(&secrets, &frames);
        let mut fed = 0;
        for (frame, sent) in frames.iter().zip(&steps) {
            fed += frame.len();
            proptest::prop_assert!(expected.starts_with(sent));
            if input[..fed].ends_with(b"\n") {
                proptest::prop_assert_eq!(sent, &reference(&ALL, &input[..fed]));
            }
        }
        proptest::prop_assert_eq!(steps.last().unwrap(), &expected);
        for secret in ALL {
            proptest::prop_assert!(!out.windows(secret.len()).any(|w| w == secret.as_bytes()));
        }
    }
}
