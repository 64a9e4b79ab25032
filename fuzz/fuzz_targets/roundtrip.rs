//! Encoder → decoder round trip on arbitrary events.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use tower_llm_stream::sse::{Decoder, Event, encode_event};

fuzz_target!(|input: (Option<String>, String, Option<String>, Option<u64>)| {
    let (event_type, data, id, retry) = input;
    let mut event = Event::new(data.clone());
    if let Some(t) = &event_type {
        event = event.with_event_type(t.clone());
    }
    if let Some(i) = &id {
        event = event.with_id(i.clone());
    }
    if let Some(r) = retry {
        event = event.with_retry(r);
    }
    let mut wire = BytesMut::new();
    if encode_event(&event, &mut wire).is_err() {
        let bad = |s: &Option<String>| s.as_deref().is_some_and(|s| s.contains(['\r', '\n', '\0']));
        assert!(bad(&event_type) || bad(&id), "rejected a valid event");
        assert!(wire.is_empty());
        return;
    }
    let mut decoder = Decoder::new();
    decoder.push(Bytes::from(wire.to_vec()));
    let block = decoder.next_block().expect("one block").expect("no error");
    assert!(block.is_canonical());
    let got = block.into_event().expect("an event");
    assert!(decoder.next_block().is_none());
    assert_eq!(got.data(), data.replace("\r\n", "\n").replace('\r', "\n"));
    assert_eq!(got.event_type(), event_type.as_deref().filter(|t| !t.is_empty()));
    assert_eq!(got.id(), id.as_deref());
    assert_eq!(got.retry(), retry);
});
