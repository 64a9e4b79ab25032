//! The proxy's field format: tracing-subscriber's default (`name=value`, strings quoted),
//! written directly for the values a stream's span records.
//!
//! Every stream records about fourteen fields into its span (provider, model, status, token
//! counts, events, bytes, outcome, …), and the default formatter writes each through
//! `core::fmt` with ANSI style wrappers even when colours are off: about 1,500 instructions a
//! field, half of the per-stream logging cost. [`PlainFields`] writes integers, booleans and
//! strings that need no escaping itself, and hands everything else (the message, floats,
//! `Debug` values, errors, escaped strings, a coloured terminal) to tracing-subscriber's own
//! [`DefaultVisitor`], so the text is the same byte for byte.

use std::fmt;
use tracing::field::{Field, Visit};
use tracing_subscriber::field::{RecordFields, VisitOutput};
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::{DefaultVisitor, Writer};

/// [`FormatFields`] with `DefaultFields`' output; see the module docs.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlainFields;

impl<'writer> FormatFields<'writer> for PlainFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        let mut visitor = PlainVisitor {
            plain: !writer.has_ansi_escapes(),
            writer,
            is_empty: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct PlainVisitor<'a> {
    writer: Writer<'a>,
    /// No colours: the fast paths apply.
    plain: bool,
    is_empty: bool,
    result: fmt::Result,
}

impl PlainVisitor<'_> {
    /// Whether `field` is written here: plain output, and a name the default writes as it is.
    fn writes(&self, field: &Field) -> bool {
        self.plain
            && self.result.is_ok()
            && field.name() != "message"
            && !field.name().starts_with("r#")
            && !field.name().starts_with("log.")
    }

    /// `name=` after a separating space.
    fn key(&mut self, field: &Field) -> fmt::Result {
        if self.is_empty {
            self.is_empty = false;
        } else {
            self.writer.write_char(' ')?;
        }
        self.writer.write_str(field.name())?;
        self.writer.write_char('=')
    }

    fn integer(&mut self, field: &Field, value: impl fmt::Display) {
        self.result = self
            .key(field)
            .and_then(|()| write!(self.writer, "{value}"));
    }

    /// Hands a field to tracing-subscriber's own visitor (which adds the separator).
    fn default(&mut self, field: &Field, visit: impl FnOnce(&mut DefaultVisitor<'_>, &Field)) {
        if self.result.is_err() {
            return;
        }
        let mut visitor = DefaultVisitor::new(self.writer.by_ref(), self.is_empty);
        visit(&mut visitor, field);
        self.result = visitor.finish();
        // The default skips `log.*` fields without writing anything.
        if !field.name().starts_with("log.") {
            self.is_empty = false;
        }
    }
}

/// Whether `{:?}` of `text` is `text` between quotes: printable ASCII without `"` or `\`.
fn quotes_only(text: &str) -> bool {
    text.bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
}

impl Visit for PlainVisitor<'_> {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if self.writes(field) {
            self.integer(field, value);
        } else {
            self.default(field, |v, f| v.record_u64(f, value));
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if self.writes(field) {
            self.integer(field, value);
        } else {
            self.default(field, |v, f| v.record_i64(f, value));
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if self.writes(field) {
            self.result = self
                .key(field)
                .and_then(|()| self.writer.write_str(if value { "true" } else { "false" }));
        } else {
            self.default(field, |v, f| v.record_bool(f, value));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if self.writes(field) && quotes_only(value) {
            self.result = self.key(field).and_then(|()| {
                self.writer.write_char('"')?;
                self.writer.write_str(value)?;
                self.writer.write_char('"')
            });
        } else {
            self.default(field, |v, f| v.record_str(f, value));
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.default(field, |v, f| v.record_f64(f, value));
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        self.default(field, |v, f| v.record_i128(f, value));
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        self.default(field, |v, f| v.record_u128(f, value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.default(field, |v, f| v.record_error(f, value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.default(field, |v, f| v.record_debug(f, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::fmt::MakeWriter;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    #[derive(Debug)]
    struct Odd {
        _inner: &'static str,
    }

    /// Spans and events with every kind of value, as a stream's span records them (created
    /// empty, recorded one field at a time) and all at once.
    fn emit() {
        let span = tracing::info_span!(
            "llm_stream",
            gen_ai.system = tracing::field::Empty,
            gen_ai.request.model = tracing::field::Empty,
            http.response.status_code = tracing::field::Empty,
            gen_ai.usage.input_tokens = tracing::field::Empty,
            delta = tracing::field::Empty,
            time_to_first_event_ms = tracing::field::Empty,
            ok = tracing::field::Empty,
            outcome = tracing::field::Empty,
            error.code = tracing::field::Empty,
            big = tracing::field::Empty,
            odd = tracing::field::Empty,
            quoted = tracing::field::Empty,
            path = tracing::field::Empty,
            tab = tracing::field::Empty,
            del = tracing::field::Empty,
        );
        span.record("gen_ai.system", "openai");
        span.record("gen_ai.request.model", "gpt-4o-mini");
        span.record("http.response.status_code", 200u16);
        span.record("gen_ai.usage.input_tokens", 0u64);
        span.record("delta", -42i64);
        span.record("time_to_first_event_ms", 12.5f64);
        span.record("ok", true);
        span.record("outcome", "quote \" and \\ and\nnewline and é");
        span.record("error.code", "");
        span.record("big", u64::MAX);
        span.record("odd", tracing::field::debug(Odd { _inner: "x" }));
        span.record("quoted", "say \"hi\"");
        span.record("path", "C:\\dir");
        span.record("tab", "a\tb");
        span.record("del", "a\x7fb");
        tracing::info!(parent: &span, outcome = "completed", "stream ended");
        let error = std::io::Error::other("refused");
        tracing::warn!(
            r#type = "kw",
            n = i64::MIN,
            error = &error as &(dyn std::error::Error + 'static),
            ratio = 1.0f64,
            wide = 1u128 << 100,
            "message with \x1b[31mescape\x1b[0m and {}",
            "args"
        );
        tracing::info!(only = 7u64);
        tracing::info!("message only");
    }

    fn log(fields: bool, ansi: bool) -> String {
        let captured = Captured::default();
        let builder = tracing_subscriber::fmt()
            .with_writer(captured.clone())
            .with_ansi(ansi)
            .without_time();
        if fields {
            tracing::subscriber::with_default(builder.fmt_fields(PlainFields).finish(), emit);
        } else {
            tracing::subscriber::with_default(builder.finish(), emit);
        }
        String::from_utf8(captured.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn the_same_text_as_the_default_fields() {
        for ansi in [false, true] {
            let (ours, default) = (log(true, ansi), log(false, ansi));
            assert_eq!(ours, default, "ansi {ansi}");
            assert_eq!(ours.lines().count(), 4, "{ours}");
        }
        let plain = log(true, false);
        assert!(plain.contains(
            "gen_ai.system=\"openai\" gen_ai.request.model=\"gpt-4o-mini\" http.response.status_code=200 gen_ai.usage.input_tokens=0 delta=-42"
        ), "{plain}");
    }
}
