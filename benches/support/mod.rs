//! Workloads shared by the benchmarks.
#![allow(dead_code)]

use bytes::Bytes;

/// A realistic OpenAI chat completion stream: `events` content chunks of about 185 bytes each,
/// a finish chunk, a usage chunk and `[DONE]`, as `gpt-4o-mini` sends them.
pub fn openai_chat_stream(events: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(events * 190);
    for i in 0..events {
        let word = [
            "Hello", " there", ",", " how", " can", " I", " help", " today", "?",
        ][i % 9];
        out.extend_from_slice(
            format!(
                "data: {{\"id\":\"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG\",\"object\":\"chat.completion.chunk\",\"created\":1741570283,\"model\":\"gpt-4o-mini-2024-07-18\",\"system_fingerprint\":\"fp_06737a9306\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{word}\"}},\"logprobs\":null,\"finish_reason\":null}}],\"usage\":null}}\n\n"
            )
            .as_bytes(),
        );
    }
    out.extend_from_slice(b"data: {\"id\":\"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG\",\"object\":\"chat.completion.chunk\",\"created\":1741570283,\"model\":\"gpt-4o-mini-2024-07-18\",\"system_fingerprint\":\"fp_06737a9306\",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":null}\n\n");
    out.extend_from_slice(b"data: {\"id\":\"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG\",\"object\":\"chat.completion.chunk\",\"created\":1741570283,\"model\":\"gpt-4o-mini-2024-07-18\",\"system_fingerprint\":\"fp_06737a9306\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":9,\"total_tokens\":18}}\n\n");
    out.extend_from_slice(b"data: [DONE]\n\n");
    out
}

/// A real OpenAI chat stream (`tests/fixtures/openai/chat_text_include_usage.sse`, captured
/// from `gpt-4o-mini` with `include_usage`) stretched to `events` events: its role chunk,
/// its content chunks repeated in order, its finish chunk, its usage chunk and `[DONE]`.
pub fn openai_fixture_chat_stream(events: usize) -> Vec<u8> {
    let fixture: &[u8] = include_bytes!("../../tests/fixtures/openai/chat_text_include_usage.sse");
    let mut blocks = Vec::new();
    let mut start = 0;
    for at in memchr::memmem::find_iter(fixture, b"\n\n") {
        blocks.push(&fixture[start..at + 2]);
        start = at + 2;
    }
    let (role, rest) = blocks.split_first().expect("a role chunk");
    let (content, tail) = rest.split_at(rest.len() - 3);
    assert!(tail[2] == b"data: [DONE]\n\n" && !content.is_empty() && events > 4);
    let mut out = role.to_vec();
    for i in 0..events - 4 {
        out.extend_from_slice(content[i % content.len()]);
    }
    tail.iter().for_each(|block| out.extend_from_slice(block));
    out
}

/// `count` events of `size` bytes of JSON-ish data each (Responses API terminal events).
pub fn large_event_stream(count: usize, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(count * (size + 40));
    for _ in 0..count {
        out.extend_from_slice(
            b"event: response.completed\ndata: {\"type\":\"response.completed\",\"text\":\"",
        );
        out.resize(out.len() + size, b'a');
        out.extend_from_slice(b"\"}\n\n");
    }
    out
}

/// One chunk per event, as a provider flushing every token sends them.
pub fn per_event_chunks(stream: &[u8]) -> Vec<Bytes> {
    let stream = Bytes::copy_from_slice(stream);
    let mut chunks = Vec::new();
    let mut start = 0;
    for at in memchr::memmem::find_iter(&stream, b"\n\n") {
        chunks.push(stream.slice(start..at + 2));
        start = at + 2;
    }
    chunks
}

/// Fixed-size chunks (network segments that cut events anywhere).
pub fn sized_chunks(stream: &[u8], size: usize) -> Vec<Bytes> {
    let stream = Bytes::copy_from_slice(stream);
    (0..stream.len())
        .step_by(size)
        .map(|at| stream.slice(at..(at + size).min(stream.len())))
        .collect()
}

/// An Anthropic Messages stream with `events` text deltas (whitespace padding as sent).
pub fn anthropic_stream(events: usize) -> Vec<u8> {
    let mut out = b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"claude-sonnet-4-5-20250929\",\"id\":\"msg_018E1hg8GoVTGEKQY3ovMcSJ\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":20,\"output_tokens\":1}}}\n\nevent: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n".to_vec();
    for i in 0..events {
        let word = [
            "Hello", " there", ",", " how", " can", " I", " help", " today", "?",
        ][i % 9];
        out.extend_from_slice(format!("event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"{word}\"}}      }}\n\n").as_bytes());
    }
    out.extend_from_slice(b"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\nevent: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":5}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    out
}

/// A Gemini stream with `events` chunks, running usage on each, CRLF framing.
pub fn gemini_stream(events: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..events {
        let word = [
            "Hello", " there", ",", " how", " can", " I", " help", " today", "?",
        ][i % 9];
        let finish = if i + 1 == events {
            ",\"finishReason\": \"STOP\""
        } else {
            ""
        };
        out.extend_from_slice(format!("data: {{\"candidates\": [{{\"content\": {{\"parts\": [{{\"text\": \"{word}\"}}],\"role\": \"model\"}}{finish}}}],\"usageMetadata\": {{\"promptTokenCount\": 13,\"candidatesTokenCount\": {i},\"totalTokenCount\": {}}},\"modelVersion\": \"gemini-2.0-flash\",\"responseId\": \"w1peaMz6INOvnvgPgYfPiQY\"}}\r\n\r\n", 13 + i).as_bytes());
    }
    out
}

/// Always-ready body over prepared chunks (what a fast upstream connection looks like).
pub struct Chunks(pub std::collections::VecDeque<Bytes>);

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = std::convert::Infallible;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, std::convert::Infallible>>> {
        std::task::Poll::Ready(self.0.pop_front().map(|b| Ok(http_body::Frame::data(b))))
    }
}

/// An upstream that answers every request with an event stream of `chunks`, at once. The
/// service holds them behind an `Arc`, so cloning it is as cheap as a real client's (layers
/// that keep a clone per request, as the fallback layer does, do not pay for 2,000 `Bytes`
/// handles); each response copies the handles once.
pub fn upstream(
    chunks: std::collections::VecDeque<Bytes>,
) -> impl tower::Service<
    http::Request<()>,
    Response = http::Response<Chunks>,
    Error = std::convert::Infallible,
    Future = std::future::Ready<Result<http::Response<Chunks>, std::convert::Infallible>>,
> + Clone {
    let chunks = std::sync::Arc::new(chunks);
    tower::service_fn(move |_req: http::Request<()>| {
        let response = http::Response::builder()
            .header("content-type", "text/event-stream")
            .body(Chunks(std::collections::VecDeque::clone(&chunks)))
            .unwrap();
        std::future::ready(Ok(response))
    })
}

/// Drains a body whose frames are always ready; returns the frame count.
pub fn drain<B: http_body::Body<Data = Bytes>>(body: B) -> usize
where
    B::Error: std::fmt::Debug,
{
    use futures_util::FutureExt;
    use http_body_util::BodyExt;
    let mut body = std::pin::pin!(body);
    let mut frames = 0;
    while let Some(frame) = body.frame().now_or_never().expect("always ready") {
        criterion::black_box(frame.unwrap());
        frames += 1;
    }
    frames
}
