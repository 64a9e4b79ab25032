//! What the load generator measures: a per-stream check that no event was lost, and
//! percentiles over all streams.

use std::time::Duration;

/// Reads a streamed response incrementally: counts whole events, content chunks (non-empty
/// `"content":"…"`) and whether `data: [DONE]` ended it. Keeps at most one partial event.
#[derive(Debug, Default)]
pub struct StreamCheck {
    partial: Vec<u8>,
    pub events: usize,
    pub content_chunks: usize,
    pub done: bool,
    pub error_event: bool,
}

impl StreamCheck {
    pub fn push(&mut self, mut chunk: &[u8]) {
        // The separator split across two reads.
        if self.partial.last() == Some(&b'\n') && chunk.first() == Some(&b'\n') {
            let mut event = std::mem::take(&mut self.partial);
            event.pop();
            self.event(&event);
            event.clear();
            self.partial = event;
            chunk = &chunk[1..];
        }
        loop {
            let Some(end) = memchr::memmem::find(chunk, b"\n\n") else {
                self.partial.extend_from_slice(chunk);
                return;
            };
            if self.partial.is_empty() {
                self.event(&chunk[..end]);
            } else {
                self.partial.extend_from_slice(&chunk[..end]);
                let event = std::mem::take(&mut self.partial);
                self.event(&event);
                self.partial = event;
                self.partial.clear();
            }
            chunk = &chunk[end + 2..];
        }
    }

    /// Whether a complete event has been seen.
    pub fn has_event(&self) -> bool {
        self.events > 0
    }

    fn event(&mut self, event: &[u8]) {
        if event.is_empty() {
            return;
        }
        self.events += 1;
        if event == b"data: [DONE]" {
            self.done = true;
        } else if event.starts_with(b"data: {\"error\"") || event.starts_with(b"event: error") {
            self.error_event = true;
        } else if let Some(at) = memchr::memmem::find(event, b"\"content\":\"") {
            if event.get(at + 11) != Some(&b'"') {
                self.content_chunks += 1;
            }
        }
    }
}

/// p50/p90/p99/max of a set of durations.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Percentiles {
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Percentiles {
    /// Nearest-rank percentiles; sorts `samples`.
    pub fn of(samples: &mut [Duration]) -> Self {
        if samples.is_empty() {
            return Percentiles::default();
        }
        samples.sort_unstable();
        let rank = |p: f64| {
            let i = ((p / 100.0) * samples.len() as f64).ceil() as usize;
            samples[i.clamp(1, samples.len()) - 1]
        };
        Percentiles {
            p50: rank(50.0),
            p90: rank(90.0),
            p99: rank(99.0),
            max: samples[samples.len() - 1],
        }
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// The result of a run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub requests: usize,
    pub ok: usize,
    pub lost: usize,
    pub http_errors: usize,
    pub failures: usize,
    pub first_failure: Option<String>,
    pub events: usize,
    pub bytes: u64,
    pub wall: Duration,
    pub max_open: usize,
    pub ttfe: Percentiles,
    pub total: Percentiles,
}

impl Report {
    pub fn requests_per_second(&self) -> f64 {
        self.requests as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    pub fn events_per_second(&self) -> f64 {
        self.events as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    /// One JSON object (times in microseconds).
    pub fn json(&self) -> String {
        serde_json::json!({
            "requests": self.requests, "ok": self.ok, "lost": self.lost,
            "http_errors": self.http_errors, "failures": self.failures,
            "first_failure": self.first_failure,
            "events": self.events, "bytes": self.bytes, "wall_s": self.wall.as_secs_f64(),
            "max_open": self.max_open,
            "requests_per_s": self.requests_per_second(), "events_per_s": self.events_per_second(),
            "ttfe_us": {"p50": micros(self.ttfe.p50), "p90": micros(self.ttfe.p90), "p99": micros(self.ttfe.p99), "max": micros(self.ttfe.max)},
            "total_us": {"p50": micros(self.total.p50), "p90": micros(self.total.p90), "p99": micros(self.total.p99), "max": micros(self.total.max)},
        })
        .to_string()
    }

    /// A few readable lines.
    pub fn human(&self) -> String {
        let ms = |d: Duration| format!("{:.3} ms", d.as_secs_f64() * 1000.0);
        format!(
            "{} requests in {:.2} s: {:.0} req/s, {:.0} events/s, {} ok, {} lost events, {} HTTP errors, {} failures{}\n\
             time to first event: p50 {} p90 {} p99 {} max {}\n\
             end to end:          p50 {} p90 {} p99 {} max {}\n\
             most streams open at once: {}",
            self.requests,
            self.wall.as_secs_f64(),
            self.requests_per_second(),
            self.events_per_second(),
            self.ok,
            self.lost,
            self.http_errors,
            self.failures,
            self.first_failure
                .as_deref()
                .map(|f| format!(" (first: {f})"))
                .unwrap_or_default(),
            ms(self.ttfe.p50),
            ms(self.ttfe.p90),
            ms(self.ttfe.p99),
            ms(self.ttfe.max),
            ms(self.total.p50),
            ms(self.total.p90),
            ms(self.total.p99),
            ms(self.total.max),
            self.max_open,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &[u8] = b"data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\" a\"}}]}\n\n: keep-alive\n\ndata: {\"choices\":[{\"delta\":{\"content\":\" b\"}}]}\n\ndata: {\"choices\":[],\"usage\":{}}\n\ndata: [DONE]\n\n";

    #[test]
    fn counts_the_same_whatever_the_chunking() {
        for size in 1..STREAM.len() {
            let mut check = StreamCheck::default();
            for chunk in STREAM.chunks(size) {
                check.push(chunk);
            }
            assert_eq!(
                (
                    check.events,
                    check.content_chunks,
                    check.done,
                    check.error_event
                ),
                (6, 2, true, false),
                "chunks of {size}"
            );
        }
    }

    #[test]
    fn sees_errors_and_truncation() {
        let mut check = StreamCheck::default();
        check.push(b"data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\ndata: {\"error\":{\"code\":\"stream_truncated\"}}\n\n");
        assert!(check.error_event && !check.done);
        assert_eq!(check.content_chunks, 1);
    }

    #[test]
    fn percentiles() {
        let mut samples: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let p = Percentiles::of(&mut samples);
        assert_eq!(
            (p.p50, p.p90, p.p99, p.max),
            (
                Duration::from_millis(50),
                Duration::from_millis(90),
                Duration::from_millis(99),
                Duration::from_millis(100)
            )
        );
        assert_eq!(Percentiles::of(&mut []), Percentiles::default());
        let mut one = [Duration::from_millis(7)];
        assert_eq!(Percentiles::of(&mut one).p99, Duration::from_millis(7));
    }
}
