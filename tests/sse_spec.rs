//! The WHATWG "event stream interpretation" rules, one vector each, plus the
//! web-platform-tests `eventsource/format-*` cases. Every vector is decoded whole and in
//! 1-, 2-, 3- and 7-byte chunks, which must all agree.

mod common;

use bytes::Bytes;
use common::{Seen, blocks, events_any_chunking, seen};
use tower_llm_stream::sse::{DecodeError, Decoder};

fn data_of(input: &[u8]) -> Vec<String> {
    events_any_chunking(input)
        .into_iter()
        .map(|e| e.data)
        .collect()
}

fn msg(data: &str) -> Seen {
    seen(None, data, None, None)
}

#[test]
fn single_event() {
    assert_eq!(events_any_chunking(b"data: hello\n\n"), vec![msg("hello")]);
}

#[test]
fn line_endings_crlf_lf_cr_mixed() {
    assert_eq!(data_of(b"data: a\r\n\r\ndata: b\r\n\r\n"), ["a", "b"]);
    assert_eq!(data_of(b"data: 1\rdata: 2\r\rdata: 3\r\r"), ["1\n2", "3"]);
    assert_eq!(data_of(b"data: a\r\ndata: b\rdata: c\n\r\n"), ["a\nb\nc"]);
    // LF ends a line, then CR alone is a blank line.
    assert_eq!(data_of(b"data: a\n\rdata: b\n\n"), ["a", "b"]);
    // CR, then CRLF: a blank line after the first line.
    assert_eq!(data_of(b"data: a\r\r\ndata: b\n\n"), ["a", "b"]);
}

#[test]
fn crlf_split_across_chunks_is_one_terminator() {
    // The CR ends one chunk and the LF starts the next: not two line ends.
    let chunks = vec![
        Bytes::from_static(b"data: a\r"),
        Bytes::from_static(b"\ndata: b\r"),
        Bytes::from_static(b"\n\r"),
        Bytes::from_static(b"\n"),
    ];
    assert_eq!(common::events(chunks), vec![msg("a\nb")]);
}

#[test]
fn lone_cr_at_end_of_stream_is_a_line_end() {
    assert_eq!(data_of(b"data: x\r\r"), ["x"]);
    // ...but a final CR that ends a data line does not dispatch.
    assert_eq!(data_of(b"data: x\r"), Vec::<String>::new());
}

#[test]
fn bom_removed_once_even_when_split() {
    assert_eq!(data_of(b"\xEF\xBB\xBFdata: bom\n\n"), ["bom"]);
    // Only one BOM: the second makes the field name "\u{FEFF}data", which is unknown.
    assert_eq!(
        data_of(b"\xEF\xBB\xBF\xEF\xBB\xBFdata: x\n\ndata: y\n\n"),
        ["y"]
    );
    // A BOM after the start of the stream is not removed.
    assert_eq!(data_of(b"data: a\n\n\xEF\xBB\xBFdata: b\n\n"), ["a"]);
    for cut in 1..3 {
        let chunks = common::split_at(b"\xEF\xBB\xBFdata: s\n\n", &[cut]);
        assert_eq!(common::events(chunks), vec![msg("s")], "cut at {cut}");
    }
    // A BOM prefix that turns out not to be one is data (here, an unknown field name).
    assert_eq!(data_of(b"\xEF\xBBdata: x\n\ndata: y\n\n"), ["y"]);
    // A lone BOM prefix at the end of the stream is not lost: it is an unfinished line.
    let mut decoder = Decoder::new();
    let out = blocks(&mut decoder, vec![Bytes::from_static(b"\xEF\xBB")]);
    assert_eq!(out.len(), 1);
    let block = out[0].as_ref().unwrap();
    assert!(!block.is_terminated());
    assert_eq!(&block.raw()[..], b"\xEF\xBB");
}

#[test]
fn comments_are_not_events() {
    assert_eq!(
        data_of(b": comment\n:another\ndata: x\n: mid\ndata: y\n\n:\n\n"),
        ["x\ny"]
    );
}

#[test]
fn multiline_data_joined_with_lf() {
    assert_eq!(
        data_of(b"data: line1\ndata: line2\ndata:\ndata: line4\n\n"),
        ["line1\nline2\n\nline4"]
    );
}

#[test]
fn colonless_line_is_a_field_with_empty_value() {
    assert_eq!(data_of(b"data\n\ndata\ndata\n\n"), ["", "\n"]);
    // "event" alone sets an empty type.
    let evs = events_any_chunking(b"event\ndata: x\n\n");
    assert_eq!(evs, vec![seen(Some(""), "x", None, None)]);
}

#[test]
fn exactly_one_leading_space_removed() {
    assert_eq!(
        data_of(b"data:  two\ndata:none\ndata: \n\n"),
        [" two\nnone\n"]
    );
    assert_eq!(data_of(b"data:\tx\n\n"), ["\tx"]);
    let evs = events_any_chunking(b"event:  spaced\ndata: x\n\n");
    assert_eq!(evs[0].event.as_deref(), Some(" spaced"));
}

#[test]
fn field_name_is_text_before_first_colon() {
    let evs = events_any_chunking(b"data: a: b\nevent:x:y\n\n");
    assert_eq!(evs, vec![seen(Some("x:y"), "a: b", None, None)]);
    // Case-sensitive, no trimming: all of these are unknown fields.
    assert_eq!(
        data_of(b"Data: x\nDATA: y\nfoo: bar\ndata : q\n data: w\ndata: z\n\n"),
        ["z"]
    );
    // Long unknown field names, with and without a colon.
    assert_eq!(data_of(b"datadata: x\ndatadatadata\ndata: z\n\n"), ["z"]);
}

#[test]
fn event_type_last_one_wins_and_resets_per_event() {
    let evs = events_any_chunking(b"event: a\nevent: b\ndata: y\n\ndata: z\n\n");
    assert_eq!(evs, vec![seen(Some("b"), "y", None, None), msg("z")]);
}

#[test]
fn id_persists_is_reset_by_empty_and_ignored_with_nul() {
    let evs =
        events_any_chunking(b"id: 7\ndata: a\n\ndata: b\n\nid\ndata: c\n\nid: x\x00y\ndata: d\n\n");
    let ids: Vec<_> = evs.iter().map(|e| e.id.as_deref()).collect();
    assert_eq!(ids, [Some("7"), Some("7"), Some(""), Some("")]);
}

#[test]
fn id_updates_even_without_dispatch() {
    let evs = events_any_chunking(b"id: 5\n\ndata: x\n\n");
    assert_eq!(evs, vec![seen(None, "x", Some("5"), None)]);
    let evs = events_any_chunking(b"id: 1\ndata: a\n\n\n\ndata: b\n\n");
    assert_eq!(evs[1].id.as_deref(), Some("1"));
}

#[test]
fn retry_only_all_ascii_digits() {
    let input = b"retry: 1000\ndata: a\n\nretry: 12a\ndata: b\n\nretry: +5\ndata: c\n\nretry: -1\ndata: d\n\nretry: 1_000\ndata: e\n\nretry:  7\ndata: f\n\nretry:\ndata: g\n\nretry: 03000\ndata: h\n\n";
    let retries: Vec<_> = events_any_chunking(input).iter().map(|e| e.retry).collect();
    assert_eq!(
        retries,
        [Some(1000), None, None, None, None, None, None, Some(3000)]
    );
    // Belongs to its own block only; saturates instead of overflowing.
    let evs =
        events_any_chunking(b"retry: 5\n\ndata: x\n\nretry: 99999999999999999999999\ndata: y\n\n");
    assert_eq!(evs[0].retry, None);
    assert_eq!(evs[1].retry, Some(u64::MAX));
}

#[test]
fn no_dispatch_without_data() {
    assert_eq!(data_of(b"event: foo\n\ndata: x\n\n"), ["x"]);
    assert_eq!(
        events_any_chunking(b"event: foo\n\ndata: x\n\n")[0].event,
        None
    );
    assert_eq!(
        data_of(b"retry: 3000\n\n: c\n\nid: 1\n\n"),
        Vec::<String>::new()
    );
}

#[test]
fn unfinished_final_event_is_dropped() {
    assert_eq!(data_of(b"data: a\n\ndata: b\n"), ["a"]);
    assert_eq!(data_of(b"data: a\n\ndata: b"), ["a"]);
    assert_eq!(data_of(b"data: a\r"), Vec::<String>::new());
    assert_eq!(data_of(b""), Vec::<String>::new());
}

#[test]
fn unfinished_final_block_is_reported_unterminated() {
    let mut decoder = Decoder::new();
    let out = blocks(
        &mut decoder,
        vec![Bytes::from_static(b"data: a\n\ndata: [DONE]")],
    );
    assert_eq!(out.len(), 2);
    let last = out[1].as_ref().unwrap();
    assert!(!last.is_terminated());
    assert_eq!(last.event().unwrap().data(), "[DONE]");
    assert_eq!(&last.canonical()[..], b"data: [DONE]\n\n");
}

#[test]
fn invalid_utf8_becomes_replacement_character() {
    assert_eq!(data_of(b"data: \xFF\xFE ok\n\n"), ["\u{FFFD}\u{FFFD} ok"]);
    // A truncated multi-byte sequence before a line end, and one split across chunks.
    assert_eq!(
        data_of(b"data: \xE2\x82\ndata: \xE2\x82\xAC\n\n"),
        ["\u{FFFD}\n\u{20AC}"]
    );
    assert_eq!(
        data_of("data: h\u{e9}llo \u{65e5}\u{672c} \u{1F389}\n\n".as_bytes()),
        ["h\u{e9}llo \u{65e5}\u{672c} \u{1F389}"]
    );
    let evs = events_any_chunking(b"event: \xC0x\nid: \xFF\ndata: 1\n\n");
    assert_eq!(
        evs,
        vec![seen(Some("\u{FFFD}x"), "1", Some("\u{FFFD}"), None)]
    );
}

#[test]
fn nul_in_data_is_kept() {
    assert_eq!(data_of(b"data: a\x00b\n\n"), ["a\u{0}b"]);
}

#[test]
fn long_line() {
    let mut input = b"data: ".to_vec();
    input.extend(std::iter::repeat_n(b'x', 100_000));
    input.extend(b"\n\n");
    assert_eq!(data_of(&input)[0].len(), 100_000);
}

#[test]
fn raw_blocks_keep_every_byte() {
    let input = b": keep-alive\n\nid: 3\n\nretry: 10\n\nevent: x\r\ndata: 1\r\n\r\ndata: 2\n\n";
    for size in [0, 1, 2, 5] {
        let out = blocks(&mut Decoder::new(), common::chunks_of(input, size));
        let raw: Vec<u8> = out
            .iter()
            .flat_map(|b| b.as_ref().unwrap().raw().to_vec())
            .collect();
        let canonical: Vec<u8> = out
            .iter()
            .flat_map(|b| b.as_ref().unwrap().canonical().to_vec())
            .collect();
        // Byte-exact, but for the LF of a block-ending CRLF split between two chunks
        // (index 51 | 52 here): that block is dispatched at the CR.
        let mut expected = input.to_vec();
        if size > 0 && 52 % size == 0 {
            expected.remove(52);
        }
        assert_eq!(raw, expected, "chunk size {size}");
        assert_eq!(
            canonical,
            b": keep-alive\n\nid: 3\n\nretry: 10\n\nevent: x\ndata: 1\n\ndata: 2\n\n"
        );
        assert_eq!(out.len(), 5);
        assert!(out.iter().all(|b| b.as_ref().unwrap().is_terminated()));
    }
}

#[test]
fn block_is_dispatched_at_a_final_cr_without_waiting() {
    let mut decoder = Decoder::new();
    decoder.push(Bytes::from_static(b"data: a\r\n\r"));
    let block = decoder.next_block().expect("dispatched at the CR").unwrap();
    assert_eq!(block.event().unwrap().data(), "a");
    decoder.push(Bytes::from_static(b"\ndata: b\n\n"));
    let block = decoder.next_block().unwrap().unwrap();
    assert_eq!(&block.raw()[..], b"data: b\n\n");
    assert!(decoder.next_block().is_none());
}

#[test]
fn oversized_event_is_an_error_and_decoding_resumes() {
    let mut input = b"data: ok1\n\ndata: ".to_vec();
    input.extend(std::iter::repeat_n(b'x', 1000));
    input.extend(b"\ndata: more\n\ndata: ok2\n\n");
    for size in [0, 1, 7, 64] {
        let mut decoder = Decoder::with_max_event_size(100);
        let out = blocks(&mut decoder, common::chunks_of(&input, size));
        let summary: Vec<Result<String, DecodeError>> = out
            .into_iter()
            .map(|b| b.map(|b| b.into_event().unwrap().data().to_owned()))
            .collect();
        assert_eq!(
            summary,
            [
                Ok("ok1".to_owned()),
                Err(DecodeError::EventTooLarge { limit: 100 }),
                Ok("ok2".to_owned())
            ],
            "chunk size {size}"
        );
    }
}

#[test]
fn oversized_event_at_end_of_stream() {
    let mut input = b"data: ".to_vec();
    input.extend(std::iter::repeat_n(b'x', 1000));
    for size in [0, 10] {
        let out = blocks(
            &mut Decoder::with_max_event_size(100),
            common::chunks_of(&input, size),
        );
        assert_eq!(
            out,
            [Err(DecodeError::EventTooLarge { limit: 100 })],
            "chunk size {size}"
        );
    }
}

#[test]
fn event_exactly_at_the_limit_is_accepted() {
    // 12 bytes, not counting the closing blank line.
    for input in [&b"data: 12345\n\n"[..], b"data: 12345\r\n\r\n"] {
        for size in [0, 1, 4] {
            let limit = if input.len() == 13 { 12 } else { 13 };
            let out = blocks(
                &mut Decoder::with_max_event_size(limit),
                common::chunks_of(input, size),
            );
            assert_eq!(out.len(), 1);
            assert!(out[0].is_ok());
            let out = blocks(
                &mut Decoder::with_max_event_size(limit - 1),
                common::chunks_of(input, size),
            );
            assert_eq!(out, [Err(DecodeError::EventTooLarge { limit: limit - 1 })]);
        }
    }
}

#[test]
fn pushing_without_draining_loses_nothing() {
    let mut decoder = Decoder::new();
    decoder.push(Bytes::from_static(b"data: a\n\ndata: b"));
    decoder.push(Bytes::from_static(b"c\n\n"));
    decoder.finish();
    let mut datas = Vec::new();
    while let Some(block) = decoder.next_block() {
        datas.push(block.unwrap().into_event().unwrap().data().to_owned());
    }
    assert_eq!(datas, ["a", "bc"]);
}

#[test]
fn zero_copy_when_a_block_arrives_whole() {
    let input = Bytes::from_static(b"data: {\"a\":1}\n\n");
    let mut decoder = Decoder::new();
    decoder.push(input.clone());
    let block = decoder.next_block().unwrap().unwrap();
    // Static bytes: a slice of the input points into the same memory.
    assert_eq!(block.raw().as_ptr(), input.as_ptr());
    assert_eq!(
        block.event().unwrap().data_bytes().as_ptr(),
        input[6..].as_ptr()
    );
}

// --- web-platform-tests eventsource/format-*.htm, as vectors ------------------------------

#[test]
fn wpt_format_bom() {
    assert_eq!(
        data_of("\u{FEFF}data:1\n\n\u{FEFF}data:2\n\ndata:3\n\n".as_bytes()),
        ["1", "3"]
    );
}

#[test]
fn wpt_format_bom_2() {
    assert_eq!(
        data_of("\u{FEFF}\u{FEFF}data:1\n\ndata:2\n\ndata:3\n\n".as_bytes()),
        ["2", "3"]
    );
}

#[test]
fn wpt_format_comments() {
    let long = "x".repeat(2049);
    let input =
        format!("data:1\r:\0\n:\r\ndata:2\n:{long}\rdata:3\n:data:fail\r:{long}\ndata:4\n\n");
    assert_eq!(data_of(input.as_bytes()), ["1\n2\n3\n4"]);
}

#[test]
fn wpt_format_data_before_final_empty_line() {
    assert_eq!(
        data_of(b"retry:1000\ndata:test1\n\nid:test\ndata:test2"),
        ["test1"]
    );
}

#[test]
fn wpt_format_field_data() {
    assert_eq!(
        data_of(b"data:\n\ndata\ndata\n\ndata:test\n\n"),
        ["", "\n", "test"]
    );
}

#[test]
fn wpt_format_field_event() {
    let evs = events_any_chunking(b"event:test\ndata:x\n\ndata:x\n\n");
    assert_eq!(evs, vec![seen(Some("test"), "x", None, None), msg("x")]);
}

#[test]
fn wpt_format_field_event_empty() {
    let evs = events_any_chunking(b"event: \ndata:data\n\n");
    assert_eq!(evs, vec![seen(Some(""), "data", None, None)]);
}

#[test]
fn wpt_format_field_id() {
    let evs = events_any_chunking(b"id:1\ndata:x\n\ndata:x\n\n");
    assert_eq!(evs[0].id.as_deref(), Some("1"));
    assert_eq!(evs[1].id.as_deref(), Some("1"));
}

#[test]
fn wpt_format_field_id_2() {
    let evs = events_any_chunking(b"id:1\n\ndata:x\n\nid\n\ndata:x\n\n");
    let ids: Vec<_> = evs.iter().map(|e| e.id.as_deref()).collect();
    assert_eq!(ids, [Some("1"), Some("")]);
}

#[test]
fn wpt_format_field_id_null() {
    let evs = events_any_chunking(b"id:1\x00\ndata:x\n\nid:1\ndata:y\n\nid:\x002\ndata:z\n\n");
    let ids: Vec<_> = evs.iter().map(|e| e.id.as_deref()).collect();
    assert_eq!(ids, [None, Some("1"), Some("1")]);
}

#[test]
fn wpt_format_field_parsing() {
    let input = b"data:\x00\ndata:  2\rData:1\ndata\x00:2\ndata:1\r\x00data:4\nda-ta:3\rdata_5\ndata:3\rdata:\r\n data:32\ndata:4\n\n";
    assert_eq!(data_of(input), ["\u{0}\n 2\n1\n3\n\n4"]);
}

#[test]
fn wpt_format_field_retry() {
    assert_eq!(
        events_any_chunking(b"retry:03000\ndata:x\n\n")[0].retry,
        Some(3000)
    );
}

#[test]
fn wpt_format_field_retry_bogus() {
    assert_eq!(
        events_any_chunking(b"retry:3000\nretry:1000x\ndata:x\n\n")[0].retry,
        Some(3000)
    );
}

#[test]
fn wpt_format_field_retry_empty() {
    let evs = events_any_chunking(b"retry\ndata:test\n\n");
    assert_eq!(evs, vec![msg("test")]);
}

#[test]
fn wpt_format_field_unknown() {
    let input =
        b"data:test\n data\ndata\nfoobar:xxx\njustsometext\n:thisisacommentyay\ndata:test\n\n";
    assert_eq!(data_of(input), ["test\n\ntest"]);
}

#[test]
fn wpt_format_leading_space() {
    assert_eq!(
        data_of(b"data:\ttest\rdata: \ndata:test\n\n"),
        ["\ttest\n\ntest"]
    );
}

#[test]
fn wpt_format_newlines() {
    assert_eq!(
        data_of(b"data:test\r\ndata\ndata:test\r\n\r"),
        ["test\n\ntest"]
    );
}

#[test]
fn wpt_format_null_character() {
    assert_eq!(data_of(b"data:\x00\n\n\n\n"), ["\u{0}"]);
}

#[test]
fn wpt_format_utf_8() {
    assert_eq!(data_of("data:ok\u{2026}\n\n".as_bytes()), ["ok\u{2026}"]);
}

#[test]
fn extra_blank_lines_yield_no_block() {
    for size in [0, 1, 2] {
        let out = blocks(
            &mut Decoder::new(),
            common::chunks_of(b"\n\r\n\rdata: 1\n\n\n\n: c\n\n\r\n", size),
        );
        let raw: Vec<Vec<u8>> = out.into_iter().map(|b| b.unwrap().raw().to_vec()).collect();
        assert_eq!(
            raw,
            [b"data: 1\n\n".to_vec(), b": c\n\n".to_vec()],
            "chunk size {size}"
        );
    }
}
