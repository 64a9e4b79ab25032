//! Reads an event stream on stdin and prints one JSON object per dispatched event:
//! `{"event":…,"data":…,"id":…,"retry":…}` (`null` where absent).
//!
//! ```sh
//! printf 'event: a\ndata: 1\n\n' | cargo run --example sse_decode -- 1
//! ```
//!
//! The optional argument splits the input before feeding it: `N` for N-byte chunks, `0` (the
//! default) for one chunk, `rand:SEED` for pseudo-random sizes 1..=16. Oversized events are
//! reported on stderr and decoding goes on.

use bytes::Bytes;
use std::io::{Read, Write};
use tower_llm_stream::sse::{Decoder, Event};

fn main() {
    let spec = std::env::args().nth(1).unwrap_or_else(|| "0".to_owned());
    let mut input = Vec::new();
    if let Err(err) = std::io::stdin().read_to_end(&mut input) {
        eprintln!("sse_decode: cannot read stdin: {err}");
        std::process::exit(2);
    }
    let chunks = match split(Bytes::from(input), &spec) {
        Ok(chunks) => chunks,
        Err(msg) => {
            eprintln!("sse_decode: {msg}");
            std::process::exit(2);
        }
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut decoder = Decoder::new();
    let mut print = |decoder: &mut Decoder| {
        while let Some(block) = decoder.next_block() {
            match block {
                Ok(block) if block.is_terminated() => {
                    if let Some(event) = block.event() {
                        let _ = writeln!(out, "{}", to_json(event));
                    }
                }
                Ok(_) => {} // unfinished at the end of the stream: dropped, as the spec says
                Err(err) => eprintln!("sse_decode: {err}"),
            }
        }
    };
    for chunk in chunks {
        decoder.push(chunk);
        print(&mut decoder);
    }
    decoder.finish();
    print(&mut decoder);
}

/// One output line, fields in the documented order.
#[derive(serde::Serialize)]
struct Line<'a> {
    event: Option<&'a str>,
    data: &'a str,
    id: Option<&'a str>,
    retry: Option<u64>,
}

fn to_json(event: &Event) -> String {
    let line = Line {
        event: event.event_type(),
        data: event.data(),
        id: event.id(),
        retry: event.retry(),
    };
    serde_json::to_string(&line).unwrap_or_default()
}

fn split(input: Bytes, spec: &str) -> Result<Vec<Bytes>, String> {
    if let Some(seed) = spec.strip_prefix("rand:") {
        let mut state: u64 = seed
            .parse()
            .map_err(|_| format!("bad seed in chunk spec {spec:?}"))?;
        let mut chunks = Vec::new();
        let mut at = 0;
        while at < input.len() {
            // xorshift64*: deterministic, no dependency.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let size = 1 + (state.wrapping_add(0x9E37_79B9) % 16) as usize;
            let end = (at + size).min(input.len());
            chunks.push(input.slice(at..end));
            at = end;
        }
        return Ok(chunks);
    }
    let size: usize = spec
        .parse()
        .map_err(|_| format!("chunk spec must be N, 0 or rand:SEED, got {spec:?}"))?;
    if size == 0 || size >= input.len() {
        return Ok(if input.is_empty() {
            vec![]
        } else {
            vec![input]
        });
    }
    Ok((0..input.len())
        .step_by(size)
        .map(|at| input.slice(at..(at + size).min(input.len())))
        .collect())
}
