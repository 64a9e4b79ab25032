//! The proxy's log output: every configured secret redacted from every line before it is
//! written, whatever wrote the line (the proxy, the layers, hyper at `RUST_LOG=trace`).

use std::io::{self, Write};
use tower_llm_stream::redact::Secrets;
use tracing_subscriber::fmt::MakeWriter;

/// A [`MakeWriter`] whose writers redact `secrets` from what they write. The formatter
/// writes each event as one buffer, so a secret is never split between two writes.
///
/// ```
/// use llm_proxy::logging::Redacting;
/// use tower_llm_stream::redact::Secrets;
/// use tracing_subscriber::fmt::MakeWriter;
/// use std::io::Write;
///
/// let make = Redacting::new(Vec::<u8>::new, Secrets::new(["sk-secret-123"]));
/// let mut line = make.make_writer();
/// line.write_all(b"key sk-secret-123 refused\n").unwrap();
/// ```
#[derive(Debug)]
pub struct Redacting<M> {
    inner: M,
    secrets: Secrets,
}

impl<M> Redacting<M> {
    /// Writes through `inner`, with `secrets` redacted.
    pub fn new(inner: M, secrets: Secrets) -> Self {
        Redacting { inner, secrets }
    }
}

/// The writer of one log event ([`Redacting`]).
#[derive(Debug)]
pub struct RedactingWriter<'a, W> {
    inner: W,
    secrets: &'a Secrets,
}

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for Redacting<M> {
    type Writer = RedactingWriter<'a, M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter {
            inner: self.inner.make_writer(),
            secrets: &self.secrets,
        }
    }
}

impl<W: Write> Write for RedactingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write_all(&self.secrets.redact_bytes(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Every secret the proxy holds: each provider's keys and AWS credentials, and the proxy's
/// own key.
pub fn secrets(config: &crate::Config) -> Secrets {
    let providers = config.providers.iter().flat_map(|p| p.secrets());
    Secrets::new(providers.chain(config.api_key.as_deref()))
}
