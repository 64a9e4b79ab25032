//! Quick looks at an event's data before any parse, on the hot path: does it hold any of a few
//! keys (the layers ask this of every event to decide whether it needs parsing at all), and is
//! it JSON at all ([`is_json`], for the dialects that forward an upstream's JSON as it is).
//!
//! A probe must not depend on how the upstream's encoder writes JSON: `"finish_reason":"stop"`,
//! `"finish_reason": "stop"` and `"finish_reason" :\t"stop"` are the same chunk, and so is
//! `"finish\u005freason":"stop"`. So a key is looked for with its quotes only, and each place
//! it is found is checked by looking after it (JSON whitespace, `:`, whitespace, then the
//! value's first byte); and an event with a `\u` escape that may hide a key's character
//! (`.`, `_`, a letter) is reported as [`Found::Escape`]: only a parse can tell, and the
//! callers' parse paths read escapes.

use aho_corasick::packed;
use memchr::memmem::Finder;

/// What a key's value must start with for the key to count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Value {
    /// Any value (any byte after the `:`, or none: then the event is not JSON, which only a
    /// parse tells).
    Any,
    /// Any value but `null` (or none, as for [`Any`](Value::Any)).
    NotNull,
    /// A value that starts with this byte: `"` a string, `{` an object, `[` an array.
    Starts(u8),
}

/// One thing a probe looks for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Needle {
    /// An object key, written with its quotes (`"usage"`), found where JSON whitespace, `:`,
    /// whitespace and a value as [`Value`] says follow it: wherever an encoder puts spaces.
    Key(&'static [u8], Value),
    /// Bytes found anywhere: a string value with its quotes (`"transcript.text.delta"`),
    /// which whitespace cannot split.
    Text(&'static [u8]),
}

/// What a probe found first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Found {
    /// The needle at this index (in the order given to [`Needles::new`]).
    Needle(usize),
    /// A `\u` escape of a character keys and the texts looked for are made of: a key may be
    /// hidden in it (`"finish\u005freason"`), so the event must be parsed to know.
    Escape,
}

/// The escapes that may hide a character of a key or text looked for: `.` (`\u002e`), `_`
/// and `P`…`Z` (`\u005…`), the letters (`\u006…`, `\u007…`). Not the ones encoders write
/// for other reasons: control characters (`\u000…`, `\u001…`), Go's `<`, `>`, `&`
/// (`\u003c`, `\u003e`, `\u0026`), anything beyond ASCII.
const ESCAPES: [&[u8]; 5] = [b"\\u002e", b"\\u002E", b"\\u005", b"\\u006", b"\\u007"];

/// What a pattern of the searcher is.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Key(Value),
    Text,
    Escape,
}

/// A fixed set of keys and texts looked for together (with [`ESCAPES`]), in one pass over the
/// haystack.
///
/// Where aho-corasick has its packed ("Teddy") searcher (x86-64 with SSSE3 or AVX2, aarch64
/// with NEON), one SIMD scan finds any of the patterns, where a `memmem` search per pattern
/// scans once each (`cargo bench --bench decoder -- probe`). Where Teddy is not available, one
/// `memmem` search per pattern.
#[derive(Debug)]
pub(crate) struct Needles {
    teddy: Option<packed::Searcher>,
    /// Per pattern (the needles in order, then [`ESCAPES`]): what it is.
    kinds: Vec<Kind>,
    /// Per pattern: where, from its start, the search goes on after it was found and did not
    /// count: the first offset at which a pattern may begin that overlaps it (its closing
    /// quote, for a key: `"usage"usage":{}`), else its length.
    resume: Vec<usize>,
    /// Without Teddy: one finder per pattern.
    finders: Vec<Finder<'static>>,
}

impl Needles {
    /// A probe for `needles` (none of them empty, none a prefix of another).
    pub(crate) fn new(needles: &[Needle]) -> Self {
        Needles::build(needles, true)
    }

    fn build(needles: &[Needle], teddy: bool) -> Self {
        let mut patterns: Vec<&'static [u8]> = Vec::with_capacity(needles.len() + ESCAPES.len());
        let mut kinds = Vec::with_capacity(patterns.capacity());
        for needle in needles {
            let (pattern, kind) = match *needle {
                Needle::Key(key, value) => (key, Kind::Key(value)),
                Needle::Text(text) => (text, Kind::Text),
            };
            debug_assert!(!pattern.is_empty());
            patterns.push(pattern);
            kinds.push(kind);
        }
        for escape in ESCAPES {
            patterns.push(escape);
            kinds.push(Kind::Escape);
        }
        let resume = patterns
            .iter()
            .map(|p| {
                (1..p.len())
                    .find(|&j| {
                        patterns
                            .iter()
                            .any(|q| q.starts_with(&p[j..]) || p[j..].starts_with(q))
                    })
                    .unwrap_or(p.len())
            })
            .collect();
        // Two patterns never start at the same place (see `find`).
        debug_assert!(patterns.iter().enumerate().all(|(i, p)| {
            patterns
                .iter()
                .enumerate()
                .all(|(j, q)| i == j || !q.starts_with(p))
        }));
        let teddy = teddy
            .then(|| {
                packed::Config::new()
                    .match_kind(packed::MatchKind::LeftmostFirst)
                    .builder()
                    .extend(&patterns)
                    .build()
            })
            .flatten();
        let finders = if teddy.is_some() {
            Vec::new()
        } else {
            patterns.iter().map(|p| Finder::new(*p)).collect()
        };
        Needles {
            teddy,
            kinds,
            resume,
            finders,
        }
    }

    /// Whether any of the needles, or an escape that may hide one, occurs in `haystack`.
    pub(crate) fn any_in(&self, haystack: &[u8]) -> bool {
        self.find(haystack).is_some()
    }

    /// The first needle (checked as its kind says) or escape found in `haystack`.
    ///
    /// After a key that does not count, the search goes on from the first place inside it
    /// where a pattern may begin (its closing quote), not after its end: no occurrence is
    /// hidden by an overlapping one (`"usage"usage":{}`), so the answer is that of a search
    /// for each pattern's every occurrence. (No pattern is a prefix of another, so none starts
    /// where another does.)
    pub(crate) fn find(&self, haystack: &[u8]) -> Option<Found> {
        match &self.teddy {
            Some(teddy) => {
                let mut from = 0;
                while let Some(m) =
                    teddy.find_in(haystack, aho_corasick::Span::from(from..haystack.len()))
                {
                    let i = m.pattern().as_usize();
                    if let Some(found) = self.check(i, haystack, m.end()) {
                        return Some(found);
                    }
                    from = m.start() + self.resume[i];
                }
                None
            }
            None => self.finders.iter().enumerate().find_map(|(i, finder)| {
                let len = finder.needle().len();
                let mut from = 0;
                while let Some(at) = finder.find(&haystack[from..]) {
                    let at = from + at;
                    if let Some(found) = self.check(i, haystack, at + len) {
                        return Some(found);
                    }
                    from = at + self.resume[i];
                }
                None
            }),
        }
    }

    /// Whether pattern `i`, found ending at `end`, counts.
    fn check(&self, i: usize, haystack: &[u8], end: usize) -> Option<Found> {
        match self.kinds[i] {
            Kind::Key(value) => {
                key_value_follows(&haystack[end..], value).then_some(Found::Needle(i))
            }
            Kind::Text => Some(Found::Needle(i)),
            Kind::Escape => Some(Found::Escape),
        }
    }
}

/// Whether `rest` (what follows a key's closing quote) is JSON whitespace, `:`, whitespace and
/// a value as `value` says.
fn key_value_follows(rest: &[u8], value: Value) -> bool {
    let mut bytes = rest.iter().copied().skip_while(|&b| is_json_whitespace(b));
    if bytes.next() != Some(b':') {
        return false;
    }
    let mut bytes = bytes.skip_while(|&b| is_json_whitespace(b));
    match value {
        Value::Any => true,
        Value::NotNull => bytes.next() != Some(b'n'),
        Value::Starts(first) => bytes.next() == Some(first),
    }
}

/// JSON's whitespace: space, tab, LF, CR.
fn is_json_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Whether `data` is one JSON value with only JSON whitespace around it: what serde_json
/// reads as `IgnoredAny` (RFC 8259: no raw control character in a string, every escape one of
/// JSON's, numbers in JSON's grammar, nothing cut, nothing after; the bytes of strings are not
/// checked for UTF-8, an event's data is text already), in one pass, allocating nothing
/// (serde_json's reading of ignored values keeps its stack of open brackets in a buffer it
/// allocates per value, so once per event). Nesting deeper than [`MAX_DEPTH`] is left to
/// serde_json.
pub(crate) fn is_json(data: &[u8]) -> bool {
    match validate(data) {
        Some(complete) => complete,
        None => serde_json::from_slice::<serde::de::IgnoredAny>(data).is_ok(),
    }
}

/// How deep [`is_json`] follows brackets itself (serde_json's limit when it builds values).
const MAX_DEPTH: usize = 128;

/// `Some(whether the bytes are one JSON value)`; `None`: nested too deep to say.
fn validate(b: &[u8]) -> Option<bool> {
    // One bit per open bracket, the innermost lowest: set for an object.
    let mut objects: u128 = 0;
    let mut depth = 0;
    let mut i = 0;
    'value: loop {
        i = skip_whitespace(b, i);
        let Some(&first) = b.get(i) else {
            return Some(false);
        };
        let end = match first {
            b'"' => string_end(b, i + 1),
            b'{' | b'[' => {
                i = skip_whitespace(b, i + 1);
                let object = first == b'{';
                if b.get(i) == Some(if object { &b'}' } else { &b']' }) {
                    Some(i + 1)
                } else {
                    if depth == MAX_DEPTH {
                        return None;
                    }
                    objects = objects << 1 | u128::from(object);
                    depth += 1;
                    if object {
                        match key_end(b, i) {
                            Some(end) => i = end,
                            None => return Some(false),
                        }
                    }
                    continue 'value;
                }
            }
            b't' => literal_end(b, i, b"true"),
            b'f' => literal_end(b, i, b"false"),
            b'n' => literal_end(b, i, b"null"),
            b'-' | b'0'..=b'9' => number_end(b, i),
            _ => None,
        };
        let Some(end) = end else {
            return Some(false);
        };
        i = end;
        // After a value: the next one in the innermost bracket, or its end.
        loop {
            i = skip_whitespace(b, i);
            if depth == 0 {
                return Some(i == b.len());
            }
            let object = objects & 1 != 0;
            match b.get(i) {
                Some(b',') => {
                    i += 1;
                    if object {
                        match key_end(b, skip_whitespace(b, i)) {
                            Some(end) => i = end,
                            None => return Some(false),
                        }
                    }
                    continue 'value;
                }
                Some(b'}') if object => {}
                Some(b']') if !object => {}
                _ => return Some(false),
            }
            objects >>= 1;
            depth -= 1;
            i += 1;
        }
    }
}

#[inline(always)]
fn skip_whitespace(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = b.get(i) {
        i += 1;
    }
    i
}

/// After a key (at its opening quote) and its colon.
#[inline(always)]
fn key_end(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let i = skip_whitespace(b, string_end(b, i + 1)?);
    (b.get(i) == Some(&b':')).then_some(i + 1)
}

/// After a string whose opening quote is before `i`.
#[inline(always)]
fn string_end(b: &[u8], mut i: usize) -> Option<usize> {
    loop {
        i = plain_end(b, i);
        match b.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => match b.get(i + 1)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                b'u' => {
                    let hex = b.get(i + 2..i + 6)?;
                    if !hex.iter().all(u8::is_ascii_hexdigit) {
                        return None;
                    }
                    i += 6;
                }
                _ => return None,
            },
            // A raw control character.
            _ => return None,
        }
    }
}

/// The first byte at or after `i` that is a quote, a backslash or a control character (or
/// the end): eight bytes at a time while there are eight (serde_json's test for a zero byte
/// in a word, three times), then one at a time.
#[inline(always)]
fn plain_end(b: &[u8], mut i: usize) -> usize {
    const ONES: u64 = u64::MAX / 255;
    const HIGH: u64 = ONES << 7;
    while let Some(chunk) = b.get(i..i + 8) {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word);
        let control = word.wrapping_sub(ONES * 0x20) & !word;
        let quote = word ^ (ONES * u64::from(b'"'));
        let quote = quote.wrapping_sub(ONES) & !quote;
        let backslash = word ^ (ONES * u64::from(b'\\'));
        let backslash = backslash.wrapping_sub(ONES) & !backslash;
        let found = (control | quote | backslash) & HIGH;
        if found != 0 {
            // The lowest flagged byte is exact (a borrow only flags bytes above it).
            return i + found.trailing_zeros() as usize / 8;
        }
        i += 8;
    }
    while let Some(&c) = b.get(i) {
        if c == b'"' || c == b'\\' || c < 0x20 {
            break;
        }
        i += 1;
    }
    i
}

#[inline(always)]
fn literal_end(b: &[u8], i: usize, word: &[u8]) -> Option<usize> {
    b[i..].starts_with(word).then_some(i + word.len())
}

/// After `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?` at `i`.
#[inline(always)]
fn number_end(b: &[u8], mut i: usize) -> Option<usize> {
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match b.get(i)? {
        b'0' => i += 1,
        b'1'..=b'9' => i = digits_end(b, i + 1),
        _ => return None,
    }
    if b.get(i) == Some(&b'.') {
        let end = digits_end(b, i + 1);
        if end == i + 1 {
            return None;
        }
        i = end;
    }
    if let Some(b'e' | b'E') = b.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = b.get(i) {
            i += 1;
        }
        let end = digits_end(b, i);
        if end == i {
            return None;
        }
        i = end;
    }
    Some(i)
}

#[inline(always)]
fn digits_end(b: &[u8], mut i: usize) -> usize {
    while let Some(b'0'..=b'9') = b.get(i) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NEEDLES: [Needle; 7] = [
        Needle::Key(b"\"reasoning\"", Value::Any),
        Needle::Key(b"\"content\"", Value::Starts(b'[')),
        Needle::Key(b"\"finish_reason\"", Value::Starts(b'"')),
        Needle::Key(b"\"usage\"", Value::Starts(b'{')),
        Needle::Key(b"\"error\"", Value::Any),
        Needle::Text(b"\"transcript.text.delta\""),
        Needle::Key(b"\"refusal\"", Value::NotNull),
    ];

    /// The reference: every occurrence of every pattern, checked, by `memmem`.
    fn reference(haystack: &[u8]) -> bool {
        let needle_found = NEEDLES.iter().any(|needle| match *needle {
            Needle::Key(key, value) => memchr::memmem::find_iter(haystack, key)
                .any(|at| key_value_follows(&haystack[at + key.len()..], value)),
            Needle::Text(text) => memchr::memmem::find(haystack, text).is_some(),
        });
        needle_found
            || ESCAPES
                .iter()
                .any(|e| memchr::memmem::find(haystack, e).is_some())
    }

    const CHUNK: &[u8] = br#"{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hi \u003cb\u003e"},"finish_reason":null}],"usage":null}"#;

    #[test]
    fn a_key_counts_with_any_whitespace_before_its_value() {
        let probe = Needles::new(&NEEDLES);
        assert_eq!(
            probe.find(CHUNK),
            None,
            "null values, string content, Go's escapes"
        );
        assert_eq!(probe.find(b""), None);
        for (json, found) in [
            (&br#"{"finish_reason":"stop"}"#[..], Some(Found::Needle(2))),
            (br#"{"finish_reason": "stop"}"#, Some(Found::Needle(2))),
            (
                b"{\"finish_reason\" \t\r\n: \t\r\n\"stop\"}",
                Some(Found::Needle(2)),
            ),
            (br#"{"finish_reason" : null}"#, None),
            (
                br#"{"usage" : { "prompt_tokens" : 1 }}"#,
                Some(Found::Needle(3)),
            ),
            (br#"{"usage":null,"content":"x"}"#, None),
            (br#"{"content" :[{"type":"text"}]}"#, Some(Found::Needle(1))),
            (br#"{"error" : {}}"#, Some(Found::Needle(4))),
            (br#"{"error" : null}"#, Some(Found::Needle(4))),
            (br#"{"error"}"#, None),
            (br#"{"type":"error"}"#, None),
            (br#"{"a":"\"error\": x"}"#, None),
            (
                br#"{"type" : "transcript.text.delta"}"#,
                Some(Found::Needle(5)),
            ),
            (br#"{"finish\u005freason":"stop"}"#, Some(Found::Escape)),
            (br#"{"finish\u005Freason":"stop"}"#, Some(Found::Escape)),
            (br#"{"\u0066inish_reason":"stop"}"#, Some(Found::Escape)),
            (br#"{"\u0075sage":{}}"#, Some(Found::Escape)),
            (
                br#"{"type":"transcript\u002etext.delta"}"#,
                Some(Found::Escape),
            ),
            (
                br#"{"type":"transcript\u002Etext.delta"}"#,
                Some(Found::Escape),
            ),
            (
                br#"{"a":"\u003c\u003e\u0026\u0000\u001f\u00e9\u2028"}"#,
                None,
            ),
            (br#"{"refusal" : null}"#, None),
            (br#"{"refusal" : 1}"#, Some(Found::Needle(6))),
            (br#"{"refusal":"no"}"#, Some(Found::Needle(6))),
            // The key found after a near miss.
            (br#"{"usage":null,"usage" :{}}"#, Some(Found::Needle(3))),
        ] {
            assert_eq!(probe.find(json), found, "{}", String::from_utf8_lossy(json));
        }
    }

    #[test]
    fn finds_each_key_anywhere() {
        let probe = Needles::new(&NEEDLES);
        for (i, piece) in [
            &b"\"reasoning\": \"x\","[..],
            b"\"content\":\t[],",
            b"\"finish_reason\" :\"stop\",",
            b"\"usage\": {},",
            b"\"error\":1,",
            b"\"type\":\"transcript.text.delta\",",
            b"\"refusal\": \"no\",",
        ]
        .into_iter()
        .enumerate()
        {
            for at in [1, 7, CHUNK.len() / 2, CHUNK.len() - 1] {
                let mut haystack = CHUNK[..at].to_vec();
                haystack.extend_from_slice(piece);
                haystack.extend_from_slice(&CHUNK[at..]);
                assert_eq!(probe.find(&haystack), Some(Found::Needle(i)), "{i} at {at}");
            }
        }
    }

    /// Pieces of the needles, whitespace, colons and value starts: near misses are common.
    fn haystack() -> impl Strategy<Value = Vec<u8>> {
        let texts: Vec<&'static [u8]> = NEEDLES
            .iter()
            .map(|n| match *n {
                Needle::Key(k, _) => k,
                Needle::Text(t) => t,
            })
            .chain(ESCAPES)
            .collect();
        let n = texts.len();
        let texts2 = texts.clone();
        proptest::collection::vec(
            prop_oneof![
                (0..n, any::<prop::sample::Index>()).prop_map(move |(k, cut)| {
                    let text = texts[k];
                    text[..cut.index(text.len() + 1)].to_vec()
                }),
                (0..n).prop_map(move |k| texts2[k].to_vec()),
                proptest::sample::select(vec![
                    &b" "[..],
                    b"\t",
                    b"\n",
                    b":",
                    b"\"",
                    b"{",
                    b"[",
                    b"n",
                    b"\\u00",
                    b"\\u005f",
                ])
                .prop_map(<[u8]>::to_vec),
                proptest::collection::vec(any::<u8>(), 0..8),
            ],
            0..16,
        )
        .prop_map(|pieces| pieces.concat())
    }

    proptest! {
        #[test]
        fn agrees_with_one_memmem_search_per_pattern(haystack in haystack()) {
            let probe = Needles::new(&NEEDLES);
            prop_assert_eq!(probe.any_in(&haystack), reference(&haystack));
            // The fallback (no Teddy) says the same.
            let fallback = Needles::build(&NEEDLES, false);
            prop_assert!(fallback.teddy.is_none());
            prop_assert_eq!(fallback.any_in(&haystack), reference(&haystack));
        }
    }
}

#[cfg(test)]
mod json_tests {
    use super::*;
    use proptest::prelude::*;

    /// serde_json's answer, which [`is_json`] must give.
    fn serde_reads(text: &str) -> bool {
        serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
    }

    fn validator_says(text: &str) -> Option<bool> {
        validate(text.as_bytes())
    }

    #[test]
    fn what_is_json_and_what_is_not() {
        for text in [
            "{}",
            " {\"a\" : [1, -0.5e+3, 2E-7, true, false, null, \"\\u00e9\\n\\\"\\\\\\/\\b\\f\\r\\t\"]}\t\r\n",
            "0",
            "-0",
            "\"\"",
            "\"\\ud800\"", // a lone surrogate: what JavaScript and Python read
            "1e400",
            "\"caf\u{e9} \u{1F600} \u{7f}\"",
            "[[[[{\"a\":[{}]}]]]]",
            "{\"a\":1,\"a\":2}",
        ] {
            assert_eq!(validator_says(text), Some(true), "{text:?}");
            assert!(serde_reads(text), "{text:?}");
        }
        for text in [
            "",
            " ",
            "{\"content\":\"a\0b\"}",
            "{\"content\":\"a\u{1f}b\"}",
            "{\"content\":\"a\nb\"}",
            "{\"id\":\"c1\",\"choices\":[{\"index\":0",
            "{\"id\":\"c1\"} x",
            "{\"id\":\"c1\"}{}",
            "{\"a\":1,}",
            "[1,]",
            "[,1]",
            "{,}",
            "{\"a\"}",
            "{\"a\":}",
            "{\"a\" 1}",
            "{1:2}",
            "[01]",
            "[1.]",
            "[.5]",
            "[1e]",
            "[-]",
            "[+1]",
            "[1true]",
            "[tru]",
            "[nul]",
            "[NaN]",
            "\"\\x\"",
            "\"\\u12g4\"",
            "\"\\u12\"",
            "\"abc",
            "\"abc\\",
            "[}",
            "{]",
            "]",
            "'a'",
            "\u{feff}{}",
            "[DONE]",
        ] {
            assert_eq!(validator_says(text), Some(false), "{text:?}");
            assert!(!serde_reads(text), "{text:?}");
        }
    }

    #[test]
    fn deep_nesting_is_left_to_serde_json() {
        for depth in [MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, 3 * MAX_DEPTH] {
            let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            let objects = format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
            let cut = &arrays[..arrays.len() - 1];
            for (text, json) in [(&arrays[..], true), (&objects[..], true), (cut, false)] {
                assert_eq!(is_json(text.as_bytes()), json, "{depth}");
                assert_eq!(serde_reads(text), json, "{depth}");
            }
            // The innermost `[]` opens nothing that must be remembered.
            let says = validator_says(&arrays);
            assert_eq!(says.is_none(), depth > MAX_DEPTH + 1, "{depth}");
        }
    }

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(serde_json::Value::from),
            "[a-z\"\\\\\u{0}-\u{1f}\u{e9}\u{1F600} ]{0,12}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                prop::collection::btree_map("[a-z\"\\\\]{0,3}", inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// One edit of JSON text: a character inserted, removed or replaced, or the text cut.
    #[derive(Debug, Clone)]
    enum Edit {
        Insert(prop::sample::Index, char),
        Remove(prop::sample::Index),
        Replace(prop::sample::Index, char),
        Cut(prop::sample::Index),
    }

    fn edit() -> impl Strategy<Value = Edit> {
        let c = prop::sample::select(vec![
            '"', '\\', '\0', '\u{1f}', '\u{7f}', ' ', '\t', '\n', '\r', ',', ':', '{', '}', '[',
            ']', '0', '1', '-', '+', '.', 'e', 'E', 'u', 'a', 'f', 'n', 't', 'l', '\u{e9}',
        ]);
        prop_oneof![
            (any::<prop::sample::Index>(), c.clone()).prop_map(|(i, c)| Edit::Insert(i, c)),
            any::<prop::sample::Index>().prop_map(Edit::Remove),
            (any::<prop::sample::Index>(), c).prop_map(|(i, c)| Edit::Replace(i, c)),
            any::<prop::sample::Index>().prop_map(Edit::Cut),
        ]
    }

    fn apply(text: &str, edits: &[Edit]) -> String {
        let mut chars: Vec<char> = text.chars().collect();
        for edit in edits {
            match edit {
                Edit::Insert(i, c) => chars.insert(i.index(chars.len() + 1), *c),
                Edit::Remove(i) if !chars.is_empty() => {
                    chars.remove(i.index(chars.len()));
                }
                Edit::Replace(i, c) if !chars.is_empty() => {
                    let at = i.index(chars.len());
                    chars[at] = *c;
                }
                Edit::Cut(i) => chars.truncate(i.index(chars.len() + 1)),
                _ => {}
            }
        }
        chars.into_iter().collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Any JSON, compact or pretty, is JSON; and after a few edits, the validator says
        /// what serde_json says.
        #[test]
        fn is_json_says_what_serde_json_says(
            value in json_value(),
            pretty in any::<bool>(),
            edits in prop::collection::vec(edit(), 0..4),
        ) {
            let text = if pretty {
                serde_json::to_string_pretty(&value).unwrap()
            } else {
                serde_json::to_string(&value).unwrap()
            };
            prop_assert_eq!(validator_says(&text), Some(true), "{}", text);
            let edited = apply(&text, &edits);
            prop_assert_eq!(validator_says(&edited), Some(serde_reads(&edited)), "{:?}", edited);
        }

        /// Text made of JSON's pieces.
        #[test]
        fn any_text_of_json_pieces(text in "[ \t\r\n{}\\[\\],:\"\\\\/0-9.eE+\\-a-z\u{0}\u{1f}\u{e9}]{0,24}") {
            prop_assert_eq!(validator_says(&text), Some(serde_reads(&text)), "{:?}", text);
        }
    }
}
