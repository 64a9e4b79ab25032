//! Property tests for the decoder and encoder: any chunking gives the same result as one chunk,
//! the decoder agrees with a literal transcription of the WHATWG rules on arbitrary input,
//! encode → decode round-trips, the scan stays linear and memory stays bounded.

mod common;

use bytes::{Bytes, BytesMut};
use common::{Seen, blocks, chunks_of, split_at};
use proptest::prelude::*;
use tower_llm_stream::sse::{Decoder, Event, encode_event};

/// Everything observable about one decoder output item, independent of chunking.
#[derive(Debug, PartialEq, Eq)]
enum Observed {
    Block {
        canonical: Bytes,
        terminated: bool,
        event: Option<Event>,
    },
    TooLarge,
}

fn observe(max: usize, chunks: Vec<Bytes>) -> Vec<Observed> {
    blocks(&mut Decoder::with_max_event_size(max), chunks)
        .into_iter()
        .map(|b| match b {
            Ok(b) => Observed::Block {
                canonical: b.canonical(),
                terminated: b.is_terminated(),
                event: b.into_event(),
            },
            Err(_) => Observed::TooLarge,
        })
        .collect()
}

/// A literal transcription of the WHATWG "event stream interpretation" over the whole input.
fn reference(input: &[u8]) -> Vec<Seen> {
    let text = String::from_utf8_lossy(input);
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(&text);
    let chars: Vec<char> = text.chars().collect();
    let mut lines = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < chars.len() {
        if chars[i] == '\r' || chars[i] == '\n' {
            lines.push(chars[start..i].iter().collect::<String>());
            if chars[i] == '\r' && chars.get(i + 1) == Some(&'\n') {
                i += 1;
            }
            start = i + 1;
        }
        i += 1;
    }
    let (mut data, mut event, mut last_id, mut retry) =
        (String::new(), None::<String>, None::<String>, None);
    let mut has_data = false;
    let mut out = Vec::new();
    for line in lines {
        if line.is_empty() {
            if has_data {
                out.push(Seen {
                    event: event.clone(),
                    data: data.strip_suffix('\n').unwrap_or(&data).to_owned(),
                    id: last_id.clone(),
                    retry,
                });
            }
            (data, event, retry, has_data) = (String::new(), None, None, false);
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f.to_owned(), v.strip_prefix(' ').unwrap_or(v).to_owned()),
            None => (line.clone(), String::new()),
        };
        match field.as_str() {
            "data" => {
                data.push_str(&value);
                data.push('\n');
                has_data = true;
            }
            "event" => event = Some(value),
            "id" if !value.contains('\0') => last_id = Some(value),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                retry = Some(value.bytes().fold(0u64, |n, d| {
                    n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
                }));
            }
            _ => {}
        }
    }
    out
}

/// Inputs built from the pieces that matter to the grammar, plus arbitrary bytes.
fn sse_bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"data".to_vec()),
        Just(b"data: ".to_vec()),
        Just(b"event:".to_vec()),
        Just(b"id: ".to_vec()),
        Just(b"retry: ".to_vec()),
        Just(b":".to_vec()),
        Just(b" ".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\n\n".to_vec()),
        Just(b"\xEF\xBB\xBF".to_vec()),
        Just(b"\xEF\xBB".to_vec()),
        Just(b"\x00".to_vec()),
        Just(b"\xFF".to_vec()),
        Just("é日".as_bytes().to_vec()),
        "[0-9]{1,3}".prop_map(String::into_bytes),
        "[a-z{}\\[\\]\"]{1,8}".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 1..4),
    ];
    proptest::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
}

fn cuts() -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(0usize..400, 0..30)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: common::cases(4000), ..ProptestConfig::default() })]

    #[test]
    fn any_chunking_gives_the_same_output(input in sse_bytes(), cuts in cuts(), max in prop_oneof![Just(usize::MAX), 4usize..64]) {
        let whole = observe(max, vec![Bytes::from(input.clone())]);
        prop_assert_eq!(&observe(max, split_at(&input, &cuts)), &whole);
        prop_assert_eq!(&observe(max, chunks_of(&input, 1)), &whole);
    }

    #[test]
    fn agrees_with_the_whatwg_transcription(input in sse_bytes(), cuts in cuts()) {
        prop_assert_eq!(common::events(split_at(&input, &cuts)), reference(&input));
    }

    #[test]
    fn arbitrary_bytes_agree_with_the_transcription(input in proptest::collection::vec(any::<u8>(), 0..300), cuts in cuts()) {
        prop_assert_eq!(common::events(split_at(&input, &cuts)), reference(&input));
    }

    #[test]
    fn encode_then_decode_round_trips(
        event_type in proptest::option::of("[^\r\n\0]{0,12}"),
        data in "(?s).{0,60}",
        id in proptest::option::of("[^\r\n\0]{0,12}"),
        retry in proptest::option::of(any::<u64>()),
        cuts in cuts(),
    ) {
        let mut event = Event::new(data.clone());
        if let Some(t) = &event_type { event = event.with_event_type(t.clone()); }
        if let Some(i) = &id { event = event.with_id(i.clone()); }
        if let Some(r) = retry { event = event.with_retry(r); }
        let mut wire = BytesMut::new();
        encode_event(&event, &mut wire).unwrap();
        let decoded = common::events(split_at(&wire, &cuts));
        let expected = Seen {
            event: event_type.filter(|t| !t.is_empty()),
            data: data.replace("\r\n", "\n").replace('\r', "\n"),
            id,
            retry,
        };
        prop_assert_eq!(decoded, vec![expected]);
    }
}

#[test]
fn encoder_rejects_line_breaks_and_nul_in_event_and_id() {
    for bad in ["a\nb", "a\rb", "a\0b"] {
        let mut out = BytesMut::new();
        assert!(encode_event(&Event::new("x").with_event_type(bad), &mut out).is_err());
        assert!(encode_event(&Event::new("x").with_id(bad), &mut out).is_err());
        assert!(out.is_empty(), "nothing written on error");
    }
}

/// Feeds chunks and returns (bytes scanned, largest number of bytes held at any time).
fn scan_and_hold(max: usize, chunks: impl Iterator<Item = Bytes>) -> (u64, usize, usize) {
    let mut decoder = Decoder::with_max_event_size(max);
    let (mut held, mut blocks) = (0, 0);
    for chunk in chunks {
        decoder.push(chunk);
        while let Some(block) = decoder.next_block() {
            blocks += usize::from(block.is_ok());
        }
        held = held.max(decoder.held_bytes());
    }
    decoder.finish();
    while decoder.next_block().is_some() {}
    (decoder.bytes_scanned(), held, blocks)
}

#[test]
fn scan_is_linear_for_one_byte_chunks() {
    let stream = common::fixture("openai/chat_text_include_usage.sse").repeat(50);
    let (scanned, _, blocks) =
        scan_and_hold(usize::MAX, stream.chunks(1).map(Bytes::copy_from_slice));
    assert!(blocks > 500);
    assert!(
        scanned <= 2 * stream.len() as u64,
        "scanned {scanned} of {}",
        stream.len()
    );
}

#[test]
fn scan_is_linear_for_an_8_mib_line_in_1_kib_chunks() {
    let mut stream = b"data: ".to_vec();
    stream.resize(8 << 20, b'x');
    stream.extend(b"\n\n");
    let (scanned, held, blocks) =
        scan_and_hold(16 << 20, stream.chunks(1024).map(Bytes::copy_from_slice));
    assert_eq!(blocks, 1);
    assert!(held >= 8 << 20);
    assert!(
        scanned <= 2 * stream.len() as u64,
        "scanned {scanned} of {}",
        stream.len()
    );
}

#[test]
fn scan_is_linear_for_many_short_and_colonless_lines() {
    let stream = b"abcdefghij\nx\n:\n\n".repeat(10_000);
    let (scanned, _, _) = scan_and_hold(usize::MAX, stream.chunks(3).map(Bytes::copy_from_slice));
    assert!(
        scanned <= 2 * stream.len() as u64,
        "scanned {scanned} of {}",
        stream.len()
    );
}

#[test]
fn memory_stays_bounded_without_blank_lines() {
    // 64 MiB of data lines that never end their block, against a 1 MiB limit.
    let line = Bytes::from(format!("data: {}\n", "y".repeat(1000)));
    let chunks = std::iter::repeat_n(line, 64 * 1024);
    let (_, held, blocks) = scan_and_hold(1 << 20, chunks);
    assert!(held <= (1 << 20) + 1, "held {held}");
    assert_eq!(blocks, 0);
}
