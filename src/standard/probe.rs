//! Byte-string probes: does an event contain any of a few keys? The layers ask this of every
//! event to decide whether it needs parsing at all, so it is on the hot path.

use aho_corasick::packed;
use memchr::memmem::Finder;

/// A fixed set of byte strings looked for together, in one pass over the haystack.
///
/// Where aho-corasick has its packed ("Teddy") searcher (x86-64 with SSSE3 or AVX2, aarch64
/// with NEON), one SIMD scan finds any of the needles, where a `memmem` search per needle
/// scans once each. On a 281-byte OpenAI content chunk with none of the needles (the common
/// case): 27 ns for five needles against 60 ns for five `memmem` searches, 29 ns against 36
/// ns for three (`cargo bench --bench decoder -- probe`). For a single needle, and where
/// Teddy is not available, one `memmem` search per needle.
#[derive(Debug)]
pub(crate) struct Needles {
    teddy: Option<packed::Searcher>,
    finders: Vec<Finder<'static>>,
}

impl Needles {
    /// A probe for `needles` (none of them empty).
    pub(crate) fn new(needles: &[&'static [u8]]) -> Self {
        debug_assert!(needles.iter().all(|n| !n.is_empty()));
        // One needle: a `memmem` search is the faster SIMD scan (Teddy's setup and
        // verification cost more than they save; measured in the proxy's callgrind scenario).
        let teddy = if needles.len() > 1 {
            packed::Config::new()
                .match_kind(packed::MatchKind::LeftmostFirst)
                .builder()
                .extend(needles)
                .build()
        } else {
            None
        };
        let finders = if teddy.is_some() {
            Vec::new()
        } else {
            needles.iter().map(|n| Finder::new(*n)).collect()
        };
        Needles { teddy, finders }
    }

    /// Whether any of the needles occurs in `haystack`.
    pub(crate) fn any_in(&self, haystack: &[u8]) -> bool {
        match &self.teddy {
            Some(teddy) => teddy.find(haystack).is_some(),
            None => self.finders.iter().any(|f| f.find(haystack).is_some()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KEYS: [&[u8]; 5] = [
        b"\"reasoning\":",
        b"\"content\":[",
        b"\"tool_calls\":",
        b"\"error\":",
        b"\"transcript.text.delta\"",
    ];

    fn memmem_any(haystack: &[u8]) -> bool {
        KEYS.iter()
            .any(|k| memchr::memmem::find(haystack, k).is_some())
    }

    #[test]
    fn finds_each_needle_anywhere_and_nothing_else() {
        let probe = Needles::new(&KEYS);
        let chunk = br#"{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"#;
        assert!(!probe.any_in(chunk));
        assert!(!probe.any_in(b""));
        assert!(!probe.any_in(b"\"error\""), "a prefix is not the needle");
        for key in KEYS {
            assert!(probe.any_in(key), "alone: {key:?}");
            for at in [0, 1, 7, chunk.len() / 2, chunk.len()] {
                let mut haystack = chunk[..at].to_vec();
                haystack.extend_from_slice(key);
                haystack.extend_from_slice(&chunk[at..]);
                assert!(probe.any_in(&haystack), "{key:?} at {at}");
            }
        }
    }

    proptest! {
        // Haystacks built from pieces of the needles, so that near misses are common.
        #[test]
        fn agrees_with_one_memmem_search_per_needle(
            pieces in proptest::collection::vec(
                prop_oneof![
                    (0..KEYS.len(), any::<prop::sample::Index>()).prop_map(|(k, cut)| {
                        let key = KEYS[k];
                        key[..cut.index(key.len() + 1)].to_vec()
                    }),
                    (0..KEYS.len()).prop_map(|k| KEYS[k].to_vec()),
                    proptest::collection::vec(any::<u8>(), 0..8),
                ],
                0..12,
            )
        ) {
            let haystack: Vec<u8> = pieces.concat();
            prop_assert_eq!(Needles::new(&KEYS).any_in(&haystack), memmem_any(&haystack));
        }
    }
}
