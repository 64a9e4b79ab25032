//! The one reader of what a stream reports: usage and finish reasons.
//!
//! - [`read_outcome`]: the usage and finish reasons of the frame that carries them in the
//!   standard stream (its last chunk, or a Responses terminal event), for the per-stream
//!   summary.
//! - `Report` (crate-internal): a chunk that may only report (finish reasons, usage), read in one pass, for
//!   the usage normalizer.
//!
//! [`ChatNormalizer`](crate::usage::ChatNormalizer) drops such chunks (OpenAI's finish chunk, its
//! usage chunk) after remembering what they report. Reading them as raw JSON level by level
//! (the chunk, then its `choices`, then each choice, then its `delta`) scans the innermost
//! bytes about eight times: each level's values are skipped and their UTF-8 checked, then
//! scanned again by the level below. The seeds here walk the chunk once, keeping as raw JSON
//! only the values that are kept (`usage`, the finish reasons, the indexes).

use crate::standard::json::{self, raw_string};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer as _, IgnoredAny, MapAccess, SeqAccess};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;

/// The keys a chunk that carries only usage may have besides it (with any value).
pub(crate) const USAGE_ONLY_KEYS: [&str; 10] = [
    "id",
    "object",
    "created",
    "model",
    "system_fingerprint",
    "choices",
    "x_groq",
    "provider",
    "service_tier",
    "obfuscation",
];

/// What a chunk that may only report holds.
#[derive(Debug)]
pub(crate) struct Report<'a> {
    /// Each choice's index and finish reason, for the choices whose reason is not null.
    pub(crate) reasons: Vec<(u64, &'a RawValue)>,
    /// `choices` held at least one choice.
    pub(crate) had_choices: bool,
    pub(crate) usage: Option<&'a RawValue>,
    /// A field besides those a usage-only chunk may have is not empty.
    pub(crate) keeps_something: bool,
}

impl<'a> Report<'a> {
    /// `None` for anything the full path should look at: not one JSON object, a repeated
    /// `choices`, `usage`, `index`, `delta` or (non-null) `finish_reason`, an `error` or
    /// `x_groq`, a choice that is not an object, an index that is not a whole number, a key
    /// with escapes where keys matter, or a choice that keeps something: text, logprobs, a
    /// delta with more than a role, or the role of a choice not `seen` before (its first
    /// delta).
    pub(crate) fn read(json: &'a [u8], seen: &BTreeSet<u64>) -> Option<Report<'a>> {
        // One UTF-8 check here, none per string in the parse.
        let mut de = serde_json::Deserializer::from_str(json::text(json)?);
        let report = de.deserialize_map(ReportSeed { seen }).ok()?;
        de.end().ok()?;
        Some(report)
    }
}

/// The error that sends a chunk to the full path.
fn odd<E: de::Error>() -> E {
    E::custom("not only a report")
}

struct ReportSeed<'s> {
    seen: &'s BTreeSet<u64>,
}

impl<'de> de::Visitor<'de> for ReportSeed<'_> {
    type Value = Report<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a chunk object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Report<'de>, A::Error> {
        let mut report = Report {
            reasons: Vec::new(),
            had_choices: false,
            usage: None,
            keeps_something: false,
        };
        let mut choices = false;
        while let Some(key) = map.next_key::<&'de str>()? {
            match key {
                "choices" if !choices => {
                    choices = true;
                    map.next_value_seed(Choices {
                        seen: self.seen,
                        report: &mut report,
                    })?;
                }
                "usage" if report.usage.is_none() => report.usage = Some(map.next_value()?),
                "choices" | "usage" | "error" | "x_groq" => return Err(odd()),
                key if USAGE_ONLY_KEYS.contains(&key) => {
                    map.next_value::<IgnoredAny>()?;
                }
                _ => report.keeps_something |= !map.next_value_seed(IsEmpty)?,
            }
        }
        Ok(report)
    }
}

/// `choices`: each choice read, its finish reason recorded; a choice that keeps something
/// stops the read.
struct Choices<'s, 'r, 'a> {
    seen: &'s BTreeSet<u64>,
    report: &'r mut Report<'a>,
}

impl<'de> DeserializeSeed<'de> for Choices<'_, '_, 'de> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> de::Visitor<'de> for Choices<'_, '_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of choices")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(choice) = seq.next_element_seed(ChoiceSeed)? {
            self.report.had_choices = true;
            let first_delta = choice.has_role && !self.seen.contains(&choice.index);
            if first_delta || choice.carries_something {
                return Err(odd());
            }
            if let Some(reason) = choice.finish_reason {
                self.report.reasons.push((choice.index, reason));
            }
        }
        Ok(())
    }
}

/// One choice of a reporting chunk.
struct Choice<'a> {
    index: u64,
    finish_reason: Option<&'a RawValue>,
    /// The delta has a `role`.
    has_role: bool,
    /// `delta`, `text` or `logprobs` carries something besides the role.
    carries_something: bool,
}

struct ChoiceSeed;

impl<'de> DeserializeSeed<'de> for ChoiceSeed {
    type Value = Choice<'de>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Choice<'de>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> de::Visitor<'de> for ChoiceSeed {
    type Value = Choice<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a choice object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Choice<'de>, A::Error> {
        let mut choice = Choice {
            index: 0,
            finish_reason: None,
            has_role: false,
            carries_something: false,
        };
        let (mut index, mut delta) = (None::<&'de RawValue>, false);
        while let Some(key) = map.next_key::<&'de str>()? {
            match key {
                "index" if index.is_none() => index = Some(map.next_value()?),
                // A null reason may be repeated; a second one after a reason is odd.
                "finish_reason" if choice.finish_reason.is_none() => {
                    let reason: &'de RawValue = map.next_value()?;
                    choice.finish_reason = (reason.get() != "null").then_some(reason);
                }
                "delta" if !delta => {
                    delta = true;
                    let (has_role, carries) = map.next_value_seed(Delta)?;
                    choice.has_role = has_role;
                    choice.carries_something |= carries;
                }
                "index" | "finish_reason" | "delta" => return Err(odd()),
                "text" | "logprobs" => choice.carries_something |= !map.next_value_seed(IsEmpty)?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if let Some(index) = index {
            choice.index = index.get().parse().map_err(|_| odd())?;
        }
        Ok(choice)
    }
}

/// A delta: whether it has a `role`, and whether anything else in it is not empty (a delta
/// that is not an object carries something unless it is empty).
struct Delta;

impl<'de> DeserializeSeed<'de> for Delta {
    type Value = (bool, bool);

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(bool, bool), D::Error> {
        d.deserialize_any(self)
    }
}

/// The non-object cases of [`Delta`]: `(no role, carries something unless empty)`.
macro_rules! delta_as_value {
    ($($method:ident($($arg:ident: $ty:ty),*)),* $(,)?) => {$(
        fn $method<E: de::Error>(self, $($arg: $ty),*) -> Result<(bool, bool), E> {
            IsEmpty.$method($($arg),*).map(|empty| (false, !empty))
        }
    )*};
}

impl<'de> de::Visitor<'de> for Delta {
    type Value = (bool, bool);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a delta")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(bool, bool), A::Error> {
        let (mut has_role, mut carries) = (false, false);
        while let Some(key) = map.next_key::<&'de str>()? {
            if key == "role" {
                has_role = true;
                map.next_value::<IgnoredAny>()?;
            } else {
                carries |= !map.next_value_seed(IsEmpty)?;
            }
        }
        Ok((has_role, carries))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(bool, bool), A::Error> {
        IsEmpty.visit_seq(seq).map(|empty| (false, !empty))
    }

    delta_as_value!(
        visit_unit(),
        visit_bool(v: bool),
        visit_i64(v: i64),
        visit_u64(v: u64),
        visit_f64(v: f64),
        visit_str(v: &str),
    );
}

/// Whether a value is `null`, `""`, `[]` or `{}` (what
/// [`is_empty_raw`](crate::body_util::is_empty_raw) says of its raw text), read in passing.
struct IsEmpty;

impl<'de> DeserializeSeed<'de> for IsEmpty {
    type Value = bool;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> de::Visitor<'de> for IsEmpty {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        Ok(true)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        Ok(v.is_empty())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        let mut empty = true;
        while seq.next_element::<IgnoredAny>()?.is_some() {
            empty = false;
        }
        Ok(empty)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let mut empty = true;
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {
            empty = false;
        }
        Ok(empty)
    }
}

/// The fields of a chunk or Responses event that carry its outcome. Each is kept as raw JSON
/// and read on its own, so a field of an unexpected shape loses only itself.
#[derive(Deserialize)]
struct OutcomeFields<'a> {
    #[serde(default, borrow)]
    usage: Option<&'a RawValue>,
    #[serde(default, borrow)]
    choices: Option<&'a RawValue>,
    #[serde(default, borrow)]
    response: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ResponseOutcome<'a> {
    #[serde(default, borrow)]
    usage: Option<&'a RawValue>,
    #[serde(default, borrow)]
    status: Option<&'a RawValue>,
}

/// Token counts under either API's names (chat: prompt/completion, Responses: input/output).
#[derive(Deserialize)]
struct Usage<'a> {
    #[serde(default, borrow)]
    prompt_tokens: Option<&'a RawValue>,
    #[serde(default, borrow)]
    input_tokens: Option<&'a RawValue>,
    #[serde(default, borrow)]
    completion_tokens: Option<&'a RawValue>,
    #[serde(default, borrow)]
    output_tokens: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct FinishReason<'a> {
    #[serde(default, borrow)]
    finish_reason: Option<&'a RawValue>,
}

/// Token counts under either API's names (chat: prompt/completion; Responses: input/output).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenUsage {
    /// Input (prompt) tokens.
    pub input_tokens: Option<u64>,
    /// Output (completion) tokens.
    pub output_tokens: Option<u64>,
}

/// Reads usage and finish reasons from a frame that carries them (the standard stream has
/// them once: in its last chunk, or in the Responses terminal event) into `usage` and
/// `finish_reasons`; a field it cannot read is left as it was. Parses only the fields it
/// records (borrowed, nothing else built).
///
/// ```
/// use tower_llm_stream::standard::report::{TokenUsage, read_outcome};
///
/// let frame = br#"data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}"#;
/// let (mut usage, mut reasons) = (TokenUsage::default(), Vec::new());
/// read_outcome(frame, &mut usage, &mut reasons);
/// assert_eq!((usage.input_tokens, usage.output_tokens), (Some(3), Some(1)));
/// assert_eq!(reasons, ["stop"]);
/// ```
pub fn read_outcome(frame: &[u8], usage: &mut TokenUsage, finish_reasons: &mut Vec<String>) {
    let Some(data) = frame
        .split(|&b| b == b'\n')
        .find_map(|line| line.strip_prefix(b"data: "))
    else {
        return;
    };
    let Ok(outcome) = json::parse::<OutcomeFields<'_>>(data) else {
        return;
    };
    let response = outcome
        .response
        .and_then(|r| serde_json::from_str::<ResponseOutcome<'_>>(r.get()).ok());
    // Chat chunks carry `usage`; Responses terminal events `response.usage`.
    let counts = outcome
        .usage
        .or(response.as_ref().and_then(|r| r.usage))
        .and_then(|u| serde_json::from_str::<Usage<'_>>(u.get()).ok());
    if let Some(counts) = counts {
        let count = |raw: Option<&RawValue>| raw.and_then(|n| n.get().parse::<u64>().ok());
        if let Some(n) = count(counts.prompt_tokens).or(count(counts.input_tokens)) {
            usage.input_tokens = Some(n);
        }
        if let Some(n) = count(counts.completion_tokens).or(count(counts.output_tokens)) {
            usage.output_tokens = Some(n);
        }
    }
    let reasons: Vec<String> = outcome
        .choices
        .and_then(|c| serde_json::from_str::<Vec<FinishReason<'_>>>(c.get()).ok())
        .into_iter()
        .flatten()
        .filter_map(|c| c.finish_reason.and_then(raw_string))
        .map(Cow::into_owned)
        .collect();
    let status = response.and_then(|r| r.status).and_then(raw_string);
    if !reasons.is_empty() {
        *finish_reasons = reasons;
    } else if let Some(status) = status.filter(|s| *s != "in_progress") {
        *finish_reasons = vec![status.into_owned()];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::standard::json::is_empty_raw;
    use proptest::prelude::*;

    fn is_empty(json: &str) -> bool {
        IsEmpty
            .deserialize(&mut serde_json::Deserializer::from_str(json))
            .unwrap()
    }

    proptest! {
        /// The one-pass emptiness test says what the raw-text test says, for any JSON.
        #[test]
        fn is_empty_agrees_with_the_raw_test(value in json_value()) {
            let text = serde_json::to_string(&value).unwrap();
            let raw: Box<RawValue> = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(is_empty(&text), is_empty_raw(&raw), "{}", text);
            let pretty = serde_json::to_string_pretty(&value).unwrap();
            let raw: Box<RawValue> = serde_json::from_str(&pretty).unwrap();
            prop_assert_eq!(is_empty(&pretty), is_empty_raw(&raw), "{}", pretty);
        }
    }

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            "[a-z\"\\\\]{0,3}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(3, 12, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(serde_json::Value::from),
                prop::collection::btree_map("[a-z]{1,3}", inner, 0..3)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    #[test]
    fn a_finish_chunk_and_a_usage_chunk_are_read_in_one_pass() {
        let seen = BTreeSet::from([0]);
        let finish = br#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}"#;
        let report = Report::read(finish, &seen).unwrap();
        assert!(report.had_choices && !report.keeps_something && report.usage.is_none());
        assert_eq!(report.reasons.len(), 1);
        assert_eq!(
            (report.reasons[0].0, report.reasons[0].1.get()),
            (0, "\"stop\"")
        );
        let usage = br#"{"id":"c","choices":[],"usage":{"prompt_tokens":1}}"#;
        let report = Report::read(usage, &seen).unwrap();
        assert!(!report.had_choices && report.reasons.is_empty());
        assert_eq!(report.usage.unwrap().get(), r#"{"prompt_tokens":1}"#);
    }

    #[test]
    fn anything_odd_goes_to_the_full_path() {
        let seen = BTreeSet::from([0]);
        for odd in [
            r#"[]"#,
            r#"{"choices":[],"choices":[]}"#,
            r#"{"usage":{},"usage":{}}"#,
            r#"{"error":{"message":"x"}}"#,
            r#"{"x_groq":{"usage":{}}}"#,
            r#"{"choices":null}"#,
            r#"{"choices":[1]}"#,
            r#"{"choices":[{"index":0,"index":1}]}"#,
            r#"{"choices":[{"index":1.5,"finish_reason":"stop"}]}"#,
            r#"{"choices":[{"index":0,"finish_reason":"stop","finish_reason":"length"}]}"#,
            r#"{"choices":[{"delta":{},"delta":{}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":"stop"}]}"#,
            r#"{"choices":[{"index":1,"delta":{"role":"assistant"},"finish_reason":"stop"}]}"#,
            r#"{"choices":[{"index":0,"text":"x","finish_reason":"stop"}]}"#,
            r#"{"choices":[{"index":0,"delta":"x","finish_reason":"stop"}]}"#,
            r#"{"choices":[{"ind\u0065x":0,"finish_reason":"stop"}]}"#,
            r#"{"choices":[]} trailing"#,
        ] {
            assert!(Report::read(odd.as_bytes(), &seen).is_none(), "{odd}");
        }
        // A null reason may repeat; a seen choice's role is nothing new.
        let fine = r#"{"choices":[{"index":0,"finish_reason":null,"finish_reason":"stop","delta":{"role":"assistant","content":""}}]}"#;
        let report = Report::read(fine.as_bytes(), &seen).unwrap();
        assert_eq!(report.reasons.len(), 1);
    }
}
