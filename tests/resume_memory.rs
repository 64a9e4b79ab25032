//! What resumable streams hold in memory with `MemoryStore`, and what `ResumeLayer` costs a
//! stream that is not resumable: heap counted by a global allocator (live bytes as asked for,
//! and as malloc gives them on glibc), through the layer as a service uses it.
//!
//! `pass_through_costs_nothing_per_event_and_keeps_nothing` is a test; the memory per retained
//! stream is a measurement: `cargo test --release --test resume_memory -- --ignored
//! --nocapture`.

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tower::{ServiceBuilder, ServiceExt};
use tower_llm_stream::resume::{MemoryStore, Resumable, ResumeLayer, ResumeResponseBody};
use tower_llm_stream_test_support::Chunks;
use tower_llm_stream_test_support::openai_chat_chunk;

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
/// Bytes asked for and not freed.
static LIVE: AtomicI64 = AtomicI64::new(0);
/// Bytes malloc handed out for them (its usable sizes) and not freed.
static LIVE_USABLE: AtomicI64 = AtomicI64::new(0);
/// Blocks not freed.
static LIVE_BLOCKS: AtomicI64 = AtomicI64::new(0);

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn usable(ptr: *mut u8, _size: usize) -> i64 {
    unsafe extern "C" {
        fn malloc_usable_size(ptr: *mut std::ffi::c_void) -> usize;
    }
    // SAFETY: `ptr` is a live block of the system allocator (malloc, or posix_memalign for
    // large alignments: both malloc's).
    (unsafe { malloc_usable_size(ptr.cast()) }) as i64
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn usable(_ptr: *mut u8, size: usize) -> i64 {
    size as i64
}

#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
            LIVE_USABLE.fetch_add(usable(ptr, layout.size()), Ordering::Relaxed);
            LIVE_BLOCKS.fetch_add(1, Ordering::Relaxed);
        }
        ptr
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        LIVE_USABLE.fetch_sub(usable(ptr, layout.size()), Ordering::Relaxed);
        LIVE_BLOCKS.fetch_sub(1, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old = usable(ptr, layout.size());
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            LIVE.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
            LIVE_USABLE.fetch_add(usable(new, new_size) - old, Ordering::Relaxed);
        }
        new
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The counts are the process's: one test at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Heap {
    bytes: i64,
    usable: i64,
    blocks: i64,
}

fn heap() -> Heap {
    Heap {
        bytes: LIVE.load(Ordering::Relaxed),
        usable: LIVE_USABLE.load(Ordering::Relaxed),
        blocks: LIVE_BLOCKS.load(Ordering::Relaxed),
    }
}

/// How an upstream body's frames sit in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Each frame an allocation of its own, of its size exactly.
    Own,
    /// Each frame a slice of an 8 KiB read buffer shared by the frames read into it, between
    /// the HTTP chunk framing: as hyper hands out a chunked response body (its first read
    /// buffer is 8 KiB), and as the SSE decoder passes on a chunk that is one whole event.
    ReadBuffer,
}

/// An upstream body: `events` chat chunks, one per frame, each made as it is asked for (so
/// that what stays on the heap afterwards is what the store keeps), always ready.
struct MadeChunks {
    next: u64,
    events: u64,
    shape: Shape,
    read_buffer: bytes::BytesMut,
}

impl Body for MadeChunks {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        use bytes::BufMut;
        if self.next > self.events {
            return Poll::Ready(None);
        }
        self.next += 1;
        let chunk = openai_chat_chunk(self.next - 1);
        let frame = match self.shape {
            // `openai_chunk`'s `format!` leaves spare capacity: copied to its size.
            Shape::Own => Bytes::from(chunk.to_vec().into_boxed_slice()),
            Shape::ReadBuffer => {
                let buffer = &mut self.read_buffer;
                let head = format!("{:x}\r\n", chunk.len());
                let framed = head.len() + chunk.len() + 2;
                if buffer.capacity() - buffer.len() < framed {
                    // The frames read before keep the old buffer: a new one.
                    *buffer = bytes::BytesMut::with_capacity(8192);
                }
                buffer.put_slice(head.as_bytes());
                buffer.put_slice(&chunk);
                buffer.put_slice(b"\r\n");
                buffer.split().freeze().slice(head.len()..framed - 2)
            }
        };
        Poll::Ready(Some(Ok(Frame::data(frame))))
    }
}

/// Runs stream `id` of `events` chunks shaped as `shape` through `ResumeLayer` over `store`
/// to its end, read by its client.
async fn resumable_stream(store: &MemoryStore, id: String, events: u64, shape: Shape) {
    let upstream = tower::service_fn(move |_req: Request<()>| {
        let body = MadeChunks {
            next: 1,
            events,
            shape,
            read_buffer: bytes::BytesMut::new(),
        };
        let response = Response::builder()
            .header("content-type", "text/event-stream")
            .body(body)
            .unwrap();
        std::future::ready(Ok::<_, Infallible>(response))
    });
    let service = ServiceBuilder::new()
        .layer(ResumeLayer::new(store.clone()).ttl(Duration::from_secs(600)))
        .service(upstream);
    let mut request = Request::new(());
    request.extensions_mut().insert(Resumable::new(id));
    let body = service.oneshot(request).await.unwrap().into_body();
    assert!(matches!(body, ResumeResponseBody::Stored(_)));
    let mut body = std::pin::pin!(body);
    let mut frames = 0;
    while let Some(frame) = body.frame().await {
        frame.unwrap();
        frames += 1;
    }
    assert_eq!(frames, events);
}

#[test]
#[ignore = "a measurement: run it with --release -- --ignored --nocapture"]
fn memory_per_retained_stream() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(async {
        // Within the store's default bound of 256 MiB of events: none evicted.
        for (shape, streams, events) in [
            (Shape::Own, 1_000, 20u64),
            (Shape::Own, 1_000, 200),
            (Shape::Own, 100, 2_000),
            (Shape::ReadBuffer, 1_000, 20),
            (Shape::ReadBuffer, 1_000, 200),
            (Shape::ReadBuffer, 100, 2_000),
        ] {
            // Warm up on a store of its own (the runtime's task slab, lazy statics), dropped.
            let warm = MemoryStore::new();
            for i in 0..16 {
                resumable_stream(&warm, format!("warm-{i}"), events, shape).await;
            }
            drop(warm);
            // The producer tasks ended with their stream: let the runtime drop them.
            tokio::time::sleep(Duration::from_millis(10)).await;
            let store = MemoryStore::new();
            let before = heap();
            for i in 0..streams {
                // Ids as the proxy makes them: 32 hex digits.
                resumable_stream(&store, format!("{i:032x}"), events, shape).await;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            let after = heap();
            let frames = store.bytes() as f64 / streams as f64;
            assert_eq!(
                store.bytes(),
                streams
                    * (1..=events)
                        .map(|n| openai_chat_chunk(n).len())
                        .sum::<usize>(),
                "every stream kept"
            );
            let per = |a: i64, b: i64| (a - b) as f64 / streams as f64;
            let (bytes, usable, blocks) = (
                per(after.bytes, before.bytes),
                per(after.usable, before.usable),
                per(after.blocks, before.blocks),
            );
            // glibc's malloc adds an 8-byte header to every block.
            let footprint = usable + 8.0 * blocks;
            println!(
                "MemoryStore, frames {shape:?}, {streams} finished streams of {events} events \
                 ({frames:.0} bytes of frames each, {:.0} a frame), per stream: {bytes:.0} bytes \
                 asked for ({:.0} beyond the frames, {:.1} an event), {usable:.0} bytes usable \
                 in {blocks:.1} malloc blocks, ~{footprint:.0} with malloc's headers ({:.2}x \
                 the frames, {:.1} bytes an event beyond its frame)",
                frames / events as f64,
                bytes - frames,
                (bytes - frames) / events as f64,
                footprint / frames,
                (footprint - frames) / events as f64,
            );
            drop(store);
        }
    });
}

/// Reads `body` to its end: it must be `events` frames.
async fn drain<B: Body<Data = Bytes>>(body: B, events: u64)
where
    B::Error: std::fmt::Debug,
{
    let mut body = std::pin::pin!(body);
    let mut frames = 0;
    while let Some(frame) = body.frame().await {
        frame.unwrap();
        frames += 1;
    }
    assert_eq!(frames, events);
}

/// Allocations made by a stream of `events` chunks (a request without `Resumable`), with or
/// without `ResumeLayer`, from the call to the body's end, and the heap left once it is all
/// dropped against before the call.
fn pass_through(events: u64, layer: bool) -> (u64, Heap) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let chunks: VecDeque<Bytes> = (0..events).map(openai_chat_chunk).collect();
    // Cloned once now: a `Bytes` made from a `Vec` allocates its shared header at its first
    // clone, which is not the stream's doing.
    drop(chunks.clone());
    let store = MemoryStore::new();
    let before = heap();
    let counted = ALLOCATIONS.load(Ordering::Relaxed);
    runtime.block_on(async {
        let upstream = tower::service_fn(|_req: Request<()>| {
            let response = Response::builder()
                .header("content-type", "text/event-stream")
                .body(Chunks(chunks.clone()))
                .unwrap();
            std::future::ready(Ok::<_, Infallible>(response))
        });
        if layer {
            let service = ServiceBuilder::new()
                .layer(ResumeLayer::new(store.clone()))
                .service(upstream);
            let body = service.oneshot(Request::new(())).await.unwrap().into_body();
            assert!(matches!(body, ResumeResponseBody::Direct(_)));
            drain(body, events).await;
        } else {
            let body = upstream
                .oneshot(Request::new(()))
                .await
                .unwrap()
                .into_body();
            drain(body, events).await;
        }
    });
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - counted;
    let after = heap();
    drop((chunks, store, runtime));
    let left = Heap {
        bytes: after.bytes - before.bytes,
        usable: after.usable - before.usable,
        blocks: after.blocks - before.blocks,
    };
    (allocations, left)
}

#[test]
fn pass_through_costs_nothing_per_event_and_keeps_nothing() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // Warm up: lazy statics, tracing's callsites.
    pass_through(10, true);
    pass_through(10, false);
    let (bare, bare_large) = (pass_through(1_000, false), pass_through(2_000, false));
    let (layer, layer_large) = (pass_through(1_000, true), pass_through(2_000, true));
    println!(
        "not resumable, 1,000 / 2,000 events: {} / {} allocations without the layer, {} / {} \
         through ResumeLayer; heap left after: {:?} / {:?}",
        bare.0, bare_large.0, layer.0, layer_large.0, bare.1, layer.1
    );
    // Nothing per event: as many allocations for 2,000 events as for 1,000, with or without.
    assert_eq!(layer_large.0, layer.0, "per event through the layer");
    assert_eq!(bare_large.0, bare.0, "per event without the layer");
    // Per stream, the layer's boxed future and no more than a few.
    assert!(
        layer.0 <= bare.0 + 2,
        "{} allocations through the layer, {} without",
        layer.0,
        bare.0
    );
    // Nothing kept once the stream is dropped.
    let nothing = Heap {
        bytes: 0,
        usable: 0,
        blocks: 0,
    };
    assert_eq!(layer.1, nothing);
    assert_eq!(layer_large.1, nothing);
}
