//! The configured secrets and their searcher, shared by the layer, its bodies and the
//! application's own redaction (log lines).

use aho_corasick::{AhoCorasick, MatchKind};
use std::borrow::Cow;
use std::sync::Arc;

/// What every occurrence of a secret is replaced with.
///
/// ```
/// use tower_llm_stream::redact::{REDACTED, Secrets};
///
/// assert_eq!(Secrets::new(["sk-abcdefgh"]).redact_str("sk-abcdefgh"), REDACTED);
/// ```
pub const REDACTED: &str = "[redacted]";

/// Secrets shorter than this are ignored: too short to be keys, they would redact ordinary
/// text.
///
/// ```
/// use tower_llm_stream::redact::{MIN_SECRET_LEN, Secrets};
///
/// assert!(Secrets::new(["x".repeat(MIN_SECRET_LEN - 1)]).is_empty());
/// assert_eq!(Secrets::new(["x".repeat(MIN_SECRET_LEN)]).len(), 1);
/// ```
pub const MIN_SECRET_LEN: usize = 8;

/// The secrets to redact, with their searcher; cheap to clone (one `Arc`).
///
/// Each secret is trimmed of surrounding ASCII whitespace (a key read from a file keeps its
/// newline); then empty secrets and secrets shorter than [`MIN_SECRET_LEN`] (8 bytes) are
/// ignored, and duplicates are kept once. With no secret left, [`Secrets::is_empty`] is true
/// and redaction is a no-op.
///
/// Matching is on the raw bytes, leftmost-longest, in one pass: where several secrets start at
/// the same place the longest is replaced, and after a replacement the search goes on after
/// it. A secret is found as it was given, not in an escaped form (a `/` written `\/` in JSON,
/// a percent-encoded byte); provider keys (`[A-Za-z0-9_.-]`) read the same in JSON.
///
/// Its `Debug` output shows how many secrets it holds, never the secrets.
///
/// ```
/// use tower_llm_stream::redact::Secrets;
///
/// let secrets = Secrets::new(["sk-proj-0123456789", "short"]);
/// assert_eq!(secrets.len(), 1); // "short" is too short to be a key
/// assert_eq!(
///     secrets.redact_str("Incorrect API key provided: sk-proj-0123456789."),
///     "Incorrect API key provided: [redacted]."
/// );
/// assert_eq!(format!("{secrets:?}"), "Secrets { count: 1 }");
/// ```
#[derive(Clone, Default)]
pub struct Secrets {
    matcher: Option<Arc<Matcher>>,
}

/// The searcher, and what the streaming body needs to know which tail of a frame to keep back.
pub(super) struct Matcher {
    searcher: AhoCorasick,
    /// The secrets, deduplicated.
    secrets: Vec<Box<[u8]>>,
    /// The longest secret's length.
    max_len: usize,
    /// The bytes that occur in some secret.
    in_secret: [bool; 256],
    /// The bytes that start some secret.
    starts_secret: [bool; 256],
}

impl Secrets {
    /// The secrets to redact. Each is trimmed of surrounding ASCII whitespace; empty ones and
    /// ones shorter than [`MIN_SECRET_LEN`] (8 bytes) are ignored.
    ///
    /// # Panics
    ///
    /// If the searcher cannot be built, which takes secrets of millions of bytes in all.
    ///
    /// ```
    /// use tower_llm_stream::redact::Secrets;
    ///
    /// let keys = vec![String::from("sk-ant-api03-abcdefgh\n"), String::new()];
    /// let secrets = Secrets::new(&keys);
    /// assert_eq!(secrets.len(), 1);
    /// assert_eq!(secrets.redact_str("key sk-ant-api03-abcdefgh"), "key [redacted]");
    /// ```
    #[must_use]
    pub fn new(secrets: impl IntoIterator<Item = impl AsRef<[u8]>>) -> Self {
        let mut kept: Vec<Box<[u8]>> = secrets
            .into_iter()
            .filter_map(|secret| {
                let secret = secret.as_ref().trim_ascii();
                (secret.len() >= MIN_SECRET_LEN).then(|| secret.into())
            })
            .collect();
        kept.sort_unstable();
        kept.dedup();
        if kept.is_empty() {
            return Secrets { matcher: None };
        }
        let searcher = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&kept)
            .expect("the secrets' searcher could not be built");
        let mut in_secret = [false; 256];
        let mut starts_secret = [false; 256];
        for secret in &kept {
            starts_secret[usize::from(secret[0])] = true;
            for &byte in secret.iter() {
                in_secret[usize::from(byte)] = true;
            }
        }
        Secrets {
            matcher: Some(Arc::new(Matcher {
                searcher,
                max_len: kept.iter().map(|s| s.len()).max().unwrap_or(0),
                secrets: kept,
                in_secret,
                starts_secret,
            })),
        }
    }

    /// Whether no secret was kept: redaction is then a no-op.
    ///
    /// ```
    /// use tower_llm_stream::redact::Secrets;
    ///
    /// assert!(Secrets::new(["", "1234567"]).is_empty());
    /// assert!(!Secrets::new(["12345678"]).is_empty());
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.matcher.is_none()
    }

    /// How many distinct secrets are searched for.
    ///
    /// ```
    /// use tower_llm_stream::redact::Secrets;
    ///
    /// assert_eq!(Secrets::new(["sk-abcdefgh", " sk-abcdefgh ", "sk-ijklmnop"]).len(), 2);
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        self.matcher.as_ref().map_or(0, |m| m.secrets.len())
    }

    /// `bytes` with every secret replaced by [`REDACTED`]; borrowed when there is none.
    ///
    /// ```
    /// use std::borrow::Cow;
    /// use tower_llm_stream::redact::Secrets;
    ///
    /// let secrets = Secrets::new(["sk-abcdefgh"]);
    /// assert_eq!(secrets.redact_bytes(b"a sk-abcdefgh b"), &b"a [redacted] b"[..]);
    /// assert!(matches!(secrets.redact_bytes(b"nothing here"), Cow::Borrowed(_)));
    /// ```
    #[must_use]
    pub fn redact_bytes<'a>(&self, bytes: &'a [u8]) -> Cow<'a, [u8]> {
        match self.matcher() {
            Some(matcher) => match matcher.scan(bytes, true).0 {
                Some(redacted) => Cow::Owned(redacted),
                None => Cow::Borrowed(bytes),
            },
            None => Cow::Borrowed(bytes),
        }
    }

    /// `text` with every secret replaced by [`REDACTED`]; borrowed when there is none. For
    /// log lines and error messages.
    ///
    /// A secret that is not valid UTF-8 may match inside a character: the bytes left of it
    /// are then shown as `U+FFFD`.
    ///
    /// ```
    /// use std::borrow::Cow;
    /// use tower_llm_stream::redact::Secrets;
    ///
    /// let secrets = Secrets::new(["AIzaSyA-0123456789"]);
    /// let line = "GET /v1beta/models?key=AIzaSyA-0123456789 401";
    /// assert_eq!(secrets.redact_str(line), "GET /v1beta/models?key=[redacted] 401");
    /// assert!(matches!(secrets.redact_str("no key"), Cow::Borrowed("no key")));
    /// ```
    #[must_use]
    pub fn redact_str<'a>(&self, text: &'a str) -> Cow<'a, str> {
        match self.redact_bytes(text.as_bytes()) {
            Cow::Borrowed(_) => Cow::Borrowed(text),
            Cow::Owned(bytes) => Cow::Owned(
                String::from_utf8(bytes)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
            ),
        }
    }

    pub(super) fn matcher(&self) -> Option<&Arc<Matcher>> {
        self.matcher.as_ref()
    }
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("count", &self.len())
            .finish()
    }
}

impl Matcher {
    /// The length of the longest suffix of `buf` that is a proper prefix of some secret: what
    /// a streaming body keeps back until the next frame. Zero when `buf` ends with a byte
    /// no secret holds (an SSE frame's `\n`), after one look at that byte.
    pub(super) fn pending(&self, buf: &[u8]) -> usize {
        let floor = buf.len() - buf.len().min(self.max_len - 1);
        // The tail made only of bytes that occur in some secret.
        let mut start = buf.len();
        while start > floor && self.in_secret[usize::from(buf[start - 1])] {
            start -= 1;
        }
        // The longest candidate first.
        (start..buf.len())
            .find(|&at| {
                let tail = &buf[at..];
                self.starts_secret[usize::from(tail[0])]
                    && self
                        .secrets
                        .iter()
                        .any(|secret| secret.len() > tail.len() && secret.starts_with(tail))
            })
            .map_or(0, |at| buf.len() - at)
    }

    /// Redacts `buf` up to a cut: everything when `at_end`, else everything but the tail
    /// that could still become a secret with the next frame's bytes. Returns the redacted
    /// bytes before the cut (`None` when nothing was replaced: they are `buf[..cut]`) and the
    /// cut.
    ///
    /// The output is what one leftmost-longest pass over the whole stream gives: a match that
    /// starts before the cut cannot be changed by later bytes (a longer or earlier secret
    /// reaching past the end would make a longer tail a prefix of a secret), and the search
    /// after a match resumes where one pass would, at its end.
    pub(super) fn scan(&self, buf: &[u8], at_end: bool) -> (Option<Vec<u8>>, usize) {
        let len = buf.len();
        let mut cut = if at_end { len } else { len - self.pending(buf) };
        let mut out: Option<Vec<u8>> = None;
        let mut copied = 0;
        for found in self.searcher.find_iter(buf) {
            if found.start() >= cut {
                break;
            }
            let out = out.get_or_insert_with(|| Vec::with_capacity(len + REDACTED.len()));
            out.extend_from_slice(&buf[copied..found.start()]);
            out.extend_from_slice(REDACTED.as_bytes());
            copied = found.end();
            if copied > cut {
                // The match ran into the kept-back tail: keep back only what could start a
                // secret after it.
                cut = len - self.pending(&buf[copied..]);
            }
        }
        if let Some(out) = &mut out {
            out.extend_from_slice(&buf[copied..cut]);
        }
        (out, cut)
    }
}
