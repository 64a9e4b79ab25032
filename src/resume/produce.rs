//! The producer of a resumable stream: a task that runs the stream to its end into the store,
//! whether or not anyone reads it.

use super::store::{HEARTBEAT, StreamState, StreamStore};
use crate::standard::frame::is_comment_only;
use crate::standard::write::push_int;
use bytes::{Buf, Bytes};
use http_body::Body;

/// Runs `body` to its end into `store` as stream `id` (already created): each event
/// numbered from 1, keep-alives left out. Renews the lease every [`HEARTBEAT`]; a cancel
/// seen then, or `stop` notified (a cancel asked of this process), ends the stream and drops
/// `body` (and so its upstream request).
pub(super) async fn produce<St, B>(
    store: St,
    id: String,
    body: B,
    stop: Option<std::sync::Arc<tokio::sync::Notify>>,
) where
    St: StreamStore,
    B: Body,
    B::Error: std::fmt::Display,
{
    let mut body = std::pin::pin!(body);
    let mut number = 0u64;
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    heartbeat.tick().await;
    let stopped = async {
        match &stop {
            Some(stop) => stop.notified().await,
            None => std::future::pending().await,
        }
    };
    let mut stopped = std::pin::pin!(stopped);
    let end = loop {
        let frame = tokio::select! {
            // First: once a cancel is asked, no further event is stored.
            biased;
            () = &mut stopped => break StreamState::Cancelled,
            frame = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)) => frame,
            _ = heartbeat.tick() => {
                match store.heartbeat(&id).await {
                    Ok(true) => break StreamState::Cancelled,
                    Ok(false) => {}
                    Err(e) => tracing::warn!(stream = %id, error = %e, "cannot renew a resumable stream's lease"),
                }
                continue;
            }
        };
        let data = match frame {
            None => break StreamState::Finished,
            Some(Err(e)) => {
                // The stack's error layer makes every failure an event: a body error here
                // comes from a service without it.
                tracing::warn!(stream = %id, error = %e, "a resumable stream's body failed");
                break StreamState::Failed;
            }
            Some(Ok(frame)) => match frame.into_data() {
                Ok(mut data) => data.copy_to_bytes(data.remaining()),
                Err(_) => continue,
            },
        };
        // A frame may hold several events (a renderer writes one chunk's events together):
        // each is numbered, as a slice of the frame.
        let mut failed = false;
        for event in events(&data) {
            if is_comment_only(&event) {
                continue;
            }
            number += 1;
            if let Err(e) = store.append(&id, number, event).await {
                tracing::warn!(stream = %id, error = %e, "cannot store a resumable stream's event");
                failed = true;
                break;
            }
        }
        if failed {
            break StreamState::Failed;
        }
    };
    if let Err(e) = store.end(&id, end).await {
        tracing::warn!(stream = %id, error = %e, "cannot end a resumable stream");
    }
}

/// The SSE blocks of a frame of the standard stream (each ends with a blank line; a rest
/// without one is a block too).
fn events(frame: &Bytes) -> impl Iterator<Item = Bytes> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        if at >= frame.len() {
            return None;
        }
        let end = memchr::memmem::find(&frame[at..], b"\n\n").map_or(frame.len(), |i| at + i + 2);
        let event = frame.slice(at..end);
        at = end;
        Some(event)
    })
}

/// A frame's bytes with `id: N` before its block: what a resumed reader's `Last-Event-ID`
/// names.
pub(super) fn with_id(number: u64, frame: &Bytes) -> Bytes {
    let mut out = Vec::with_capacity(frame.len() + 24);
    out.extend_from_slice(b"id: ");
    push_int(&mut out, number);
    out.push(b'\n');
    out.extend_from_slice(frame);
    Bytes::from(out)
}
