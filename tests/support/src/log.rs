//! A log written to memory, for tests that read what a `tracing` subscriber wrote.

use std::sync::{Arc, Mutex, OnceLock};

/// Everything written to it (or to its clones), kept in memory.
#[derive(Clone, Default)]
pub struct MemoryLog(Arc<Mutex<Vec<u8>>>);

impl MemoryLog {
    /// What was written so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for MemoryLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The log of this test binary: a global `tracing` subscriber into one [`MemoryLog`], set up once.
pub fn global() -> MemoryLog {
    // Global, as a subscriber set as the default of one test's thread does not see the events
    // whose callsites another test's thread registered first (their interest is cached as
    // "never").
    static LOG: OnceLock<MemoryLog> = OnceLock::new();
    LOG.get_or_init(|| {
        let log = MemoryLog::default();
        let writer = log.clone();
        let _ = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .try_init();
        log
    })
    .clone()
}
