//! The pass-through path allocates nothing per event: the three layers stacked over an OpenAI
//! chat stream, allocations counted by a global allocator, for N and 2N events.

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use tower::{ServiceBuilder, ServiceExt};
use tower_llm_stream::error_event::ErrorEventLayer;
use tower_llm_stream::reframe::SseReframeLayer;
use tower_llm_stream::timeout::StreamTimeoutLayer;
use tower_llm_stream_test_support::Chunks;

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn chunks(events: usize, split: bool) -> VecDeque<Bytes> {
    let mut all = Vec::new();
    for i in 0..events {
        all.extend_from_slice(format!("data: {{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"w{i}\"}},\"finish_reason\":null}}]}}\n\n").as_bytes());
    }
    all.extend_from_slice(b"data: [DONE]\n\n");
    let all = Bytes::from(all);
    let mut out = VecDeque::new();
    let mut start = 0;
    for end in memchr::memmem::find_iter(&all, b"\n\n").map(|i| i + 2) {
        if split {
            // Events cut in two across chunks: the copying path.
            let mid = (start + end) / 2;
            out.push_back(all.slice(start..mid));
            out.push_back(all.slice(mid..end));
        } else {
            out.push_back(all.slice(start..end));
        }
        start = end;
    }
    out
}

/// Allocations made while streaming `events` events through the stack.
fn allocations_for(events: usize, split: bool) -> u64 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(async {
        let body = chunks(events, split);
        let upstream = tower::service_fn(move |_req: Request<()>| {
            let body = Chunks(body.clone());
            async move {
                Ok::<_, Infallible>(
                    Response::builder()
                        .header("content-type", "text/event-stream")
                        .body(body)
                        .unwrap(),
                )
            }
        });
        let service = ServiceBuilder::new()
            .layer(ErrorEventLayer::new())
            .layer(StreamTimeoutLayer::new())
            .layer(SseReframeLayer::new())
            .service(upstream);
        let response = service.oneshot(Request::new(())).await.unwrap();
        let mut body = std::pin::pin!(response.into_body());
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        // Warm up (the frame queue grows once), then count.
        for _ in 0..10 {
            let _ = body.as_mut().poll_frame(&mut cx);
        }
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        let mut frames = 0;
        while let Poll::Ready(Some(frame)) = body.as_mut().poll_frame(&mut cx) {
            frame.unwrap();
            frames += 1;
        }
        assert!(frames >= events - 10);
        ALLOCATIONS.load(Ordering::Relaxed) - before
    })
}

#[test]
fn pass_through_allocates_nothing_per_event() {
    let small = allocations_for(1_000, false);
    let large = allocations_for(2_000, false);
    // A fixed amount at the end of the stream (the span reads the final chunk once), none per
    // event.
    assert!(
        large <= small + 2 && large < 64,
        "1000 events: {small} allocations, 2000 events: {large}"
    );

    // Events split across chunks are copied once into the held buffer, whose spare capacity
    // serves the next ones: amortized, not per event either.
    let small = allocations_for(1_000, true);
    let large = allocations_for(2_000, true);
    assert!(
        large <= small + 4 && large < 64,
        "split: 1000 events: {small} allocations, 2000 events: {large}"
    );
}
