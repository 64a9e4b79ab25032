//! `RedisStore` against a real `redis-server` (started on a free loopback port by each test,
//! killed when it ends): the `StreamStore` contract (the same test as `MemoryStore`'s),
//! exactness of resumed reads, cancel, end and lost producers seen across connections (as
//! replicas would), every key with a TTL, and a stream made resumable by `ResumeLayer` on one
//! replica and resumed on another.
//!
//! Without `redis-server` installed, the Redis tests print why they are skipped (and fail
//! under CI, which installs it: `.ci/run`).
#![cfg(feature = "redis")]

use bytes::Bytes;
use http::Request;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tower::{ServiceBuilder, ServiceExt};
use tower_llm_stream::resume::store::HEARTBEAT;
use tower_llm_stream::resume::{
    MemoryStore, RedisStore, Resumable, ResumeBody, ResumeLayer, ResumeResponseBody, StreamState,
    StreamStore,
};
use tower_llm_stream_test_support::openai_chat_chunk;
use tower_llm_stream_test_support::redis::{RedisServer, Reply, keys};
use tower_llm_stream_test_support::script::{ScriptBody, Step, data, frames, wait_secs};

// ---------------------------------------------------------------------------------------------
// The harness: a redis-server of the test's own (`tower_llm_stream_test_support::redis`).

/// A store on the test's Redis.
async fn store(server: &RedisServer) -> RedisStore {
    RedisStore::connect(&server.url()).await.expect("connects")
}

// ---------------------------------------------------------------------------------------------
// The contract, the same for every store.

const LONG: Duration = Duration::from_secs(600);

fn frame(n: u64) -> Bytes {
    Bytes::from(format!("data: {{\"n\":{n}}}\n\n"))
}

/// Everything after `after`, read in batches to the end: the events and the final state.
async fn read_to_end<St: StreamStore>(
    store: &St,
    id: &str,
    mut after: u64,
) -> (Vec<(u64, Bytes)>, StreamState) {
    let mut events = Vec::new();
    loop {
        let read = store
            .read(id, after, Duration::from_secs(2))
            .await
            .unwrap()
            .expect("the stream exists");
        for event in read.events {
            assert_eq!(event.number, after + 1, "no gap, no duplicate");
            after = event.number;
            events.push((event.number, event.frame));
        }
        if !read.state.is_live() {
            return (events, read.state);
        }
    }
}

/// Asserts that `store` has no stream `id`: a read finds none, a cancel nothing to cancel.
async fn assert_unknown<St: StreamStore>(store: &St, id: &str) {
    let read = store.read(id, 0, Duration::ZERO).await.unwrap();
    assert!(read.is_none(), "{id}");
    assert!(!store.cancel(id).await.unwrap(), "{id}");
}

/// What every [`StreamStore`] does: `writer` produces, `reader` (the same store, or another
/// connection to it, as another replica) reads.
async fn contract<St: StreamStore>(writer: St, reader: St) {
    // Create; a taken id is refused; an unknown one is not found.
    writer.create("c1", LONG).await.unwrap();
    assert!(writer.create("c1", LONG).await.is_err(), "a taken id");
    assert_unknown(&reader, "nope").await;
    assert!(writer.append("nope", 1, frame(1)).await.is_err());

    // A new stream: live, no events; a read with no wait returns at once.
    let read = reader.read("c1", 0, Duration::ZERO).await.unwrap().unwrap();
    assert!(read.events.is_empty());
    assert_eq!(read.state, StreamState::Live);

    // Events in order, read from any number.
    for n in 1..=5 {
        writer.append("c1", n, frame(n)).await.unwrap();
    }
    assert!(writer.append("c1", 7, frame(7)).await.is_err(), "a gap");
    assert!(
        writer.append("c1", 5, frame(5)).await.is_err(),
        "a duplicate"
    );
    let read = reader.read("c1", 0, Duration::ZERO).await.unwrap().unwrap();
    let numbers: Vec<u64> = read.events.iter().map(|e| e.number).collect();
    assert_eq!(numbers, [1, 2, 3, 4, 5]);
    assert!(read.events.iter().all(|e| e.frame == frame(e.number)));
    assert_eq!(read.state, StreamState::Live);
    let read = reader.read("c1", 3, Duration::ZERO).await.unwrap().unwrap();
    assert_eq!(
        read.events.iter().map(|e| e.number).collect::<Vec<_>>(),
        [4, 5]
    );

    // A reader waiting at the end gets the next event as soon as it is stored.
    let waiting = {
        let reader = reader.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let read = reader.read("c1", 5, Duration::from_secs(5)).await;
            (read, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    writer.append("c1", 6, frame(6)).await.unwrap();
    let (read, waited) = waiting.await.unwrap();
    let read = read.unwrap().unwrap();
    assert_eq!(read.events.len(), 1);
    assert_eq!(read.events[0].number, 6);
    assert!(
        waited < Duration::from_secs(2),
        "woken by the event: {waited:?}"
    );

    // A read with nothing new returns empty after its wait.
    let started = Instant::now();
    let read = reader
        .read("c1", 6, Duration::from_millis(200))
        .await
        .unwrap()
        .unwrap();
    assert!(read.events.is_empty());
    assert_eq!(read.state, StreamState::Live);
    assert!(started.elapsed() >= Duration::from_millis(150));

    // Cancel: the producer learns it at its heartbeat.
    assert!(!writer.heartbeat("c1").await.unwrap());
    assert!(reader.cancel("c1").await.unwrap());
    assert!(writer.heartbeat("c1").await.unwrap());

    // The end: the events, then the state; a read at the end does not wait.
    writer.end("c1", StreamState::Cancelled).await.unwrap();
    let (events, state) = read_to_end(&reader, "c1", 0).await;
    assert_eq!(events.len(), 6);
    assert_eq!(state, StreamState::Cancelled);
    let started = Instant::now();
    let read = reader
        .read("c1", 6, Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    assert!(read.events.is_empty());
    assert_eq!(read.state, StreamState::Cancelled);
    assert!(started.elapsed() < Duration::from_secs(1));

    // More than a read's batch: read in batches, every event once, then Finished.
    writer.create("c2", LONG).await.unwrap();
    for n in 1..=700 {
        writer.append("c2", n, frame(n)).await.unwrap();
    }
    writer.end("c2", StreamState::Finished).await.unwrap();
    let first = reader.read("c2", 0, Duration::ZERO).await.unwrap().unwrap();
    assert!(
        !first.events.is_empty() && first.events.len() < 700,
        "a batch"
    );
    assert_eq!(first.state, StreamState::Live, "more to come");
    let (events, state) = read_to_end(&reader, "c2", 0).await;
    assert_eq!(events.len(), 700);
    assert!(events.iter().all(|(n, f)| *f == frame(*n)));
    assert_eq!(state, StreamState::Finished);

    // Bytes as they are: binary, CR, NUL, empty lines, large.
    writer.create("c3", LONG).await.unwrap();
    let odd = [
        Bytes::from_static(b"\xff\xfe\0binary\r\n\r\n"),
        Bytes::from_static(b""),
        Bytes::from(vec![b'x'; 200_000]),
        Bytes::from("data: caf\u{e9} \u{1f600}\n\n"),
    ];
    for (n, f) in odd.iter().enumerate() {
        writer.append("c3", n as u64 + 1, f.clone()).await.unwrap();
    }
    writer.end("c3", StreamState::Failed).await.unwrap();
    let (events, state) = read_to_end(&reader, "c3", 0).await;
    assert_eq!(
        events.into_iter().map(|(_, f)| f).collect::<Vec<_>>(),
        odd.to_vec()
    );
    assert_eq!(state, StreamState::Failed);

    // A reader that claims more events than there are gets none until there are more.
    writer.create("c5", LONG).await.unwrap();
    writer.append("c5", 1, frame(1)).await.unwrap();
    let read = reader.read("c5", 3, Duration::ZERO).await.unwrap().unwrap();
    assert!(read.events.is_empty());
    for n in 2..=4 {
        writer.append("c5", n, frame(n)).await.unwrap();
    }
    let read = reader.read("c5", 3, Duration::ZERO).await.unwrap().unwrap();
    assert_eq!(
        read.events.iter().map(|e| e.number).collect::<Vec<_>>(),
        [4]
    );

    // A stream is forgotten its TTL after its last write.
    writer
        .create("c4", Duration::from_millis(300))
        .await
        .unwrap();
    writer.append("c4", 1, frame(1)).await.unwrap();
    assert!(
        reader
            .read("c4", 0, Duration::ZERO)
            .await
            .unwrap()
            .is_some()
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_unknown(&reader, "c4").await;
    // And its id can be taken again.
    writer.create("c4", LONG).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_store_keeps_the_contract() {
    let store = MemoryStore::new();
    contract(store.clone(), store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_store_keeps_the_contract() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    // The reader on connections of its own, as another replica.
    contract(store(&server).await, store(&server).await).await;
}

// ---------------------------------------------------------------------------------------------
// Redis specifics.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_after_any_number_is_exactly_the_rest() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let (writer, reader) = (store(&server).await, store(&server).await);
    writer.create("exact", LONG).await.unwrap();
    let frames: Vec<Bytes> = (1..=600u64)
        .map(|n| match n % 4 {
            0 => Bytes::from(format!("id: x\nevent: e{n}\ndata: {n}\r\n\r\n")),
            1 => Bytes::from(vec![(n % 256) as u8; n as usize * 7]),
            2 => frame(n),
            _ => Bytes::from(format!("data: {}\n\n", "\u{e9}".repeat(n as usize))),
        })
        .collect();
    for (i, f) in frames.iter().enumerate() {
        writer
            .append("exact", i as u64 + 1, f.clone())
            .await
            .unwrap();
    }
    writer.end("exact", StreamState::Finished).await.unwrap();
    for after in [0u64, 1, 2, 3, 100, 255, 256, 257, 511, 512, 598, 599, 600] {
        let (events, state) = read_to_end(&reader, "exact", after).await;
        assert_eq!(state, StreamState::Finished);
        let got: Vec<Bytes> = events.into_iter().map(|(_, f)| f).collect();
        assert_eq!(got, frames[after as usize..], "after {after}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_on_one_replica_is_seen_by_the_heartbeat_on_another() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let (producer, other) = (store(&server).await, store(&server).await);
    producer.create("cancel-me", LONG).await.unwrap();
    producer.append("cancel-me", 1, frame(1)).await.unwrap();
    assert!(!producer.heartbeat("cancel-me").await.unwrap());
    assert!(other.cancel("cancel-me").await.unwrap());
    assert!(producer.heartbeat("cancel-me").await.unwrap());
    assert!(
        producer.heartbeat("cancel-me").await.unwrap(),
        "it stays asked"
    );
    assert!(!other.cancel("never-was").await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_end_wakes_a_blocked_reader_at_once() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let (producer, other) = (store(&server).await, store(&server).await);
    for (id, events) in [("end-0", 0u64), ("end-3", 3)] {
        producer.create(id, LONG).await.unwrap();
        for n in 1..=events {
            producer.append(id, n, frame(n)).await.unwrap();
        }
        let reader = {
            let other = other.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let read = other.read(id, events, Duration::from_secs(10)).await;
                (read, started.elapsed())
            })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        let ended = Instant::now();
        producer.end(id, StreamState::Finished).await.unwrap();
        let (read, waited) = reader.await.unwrap();
        let read = read.unwrap().unwrap();
        assert!(read.events.is_empty(), "the end marker is no event");
        assert_eq!(read.state, StreamState::Finished);
        assert!(
            waited >= Duration::from_millis(150),
            "it was blocked: {waited:?}"
        );
        let after_end = ended.elapsed();
        assert!(
            after_end < Duration::from_secs(1),
            "woken {after_end:?} after the end, with 10 s of wait"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_whose_lease_runs_out_is_lost() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let lease = Duration::from_millis(300);
    let producer = store(&server).await.lease(lease);
    let other = store(&server).await;

    // Heartbeats keep it alive past its lease.
    producer.create("kept", LONG).await.unwrap();
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        producer.heartbeat("kept").await.unwrap();
    }
    let read = other
        .read("kept", 0, Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.state, StreamState::Live);

    // Without them: the events, then ProducerLost.
    producer.create("lost", LONG).await.unwrap();
    producer.append("lost", 1, frame(1)).await.unwrap();
    producer.append("lost", 2, frame(2)).await.unwrap();
    let read = other
        .read("lost", 0, Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((read.events.len(), read.state), (2, StreamState::Live));
    // A reader waiting when the lease runs out learns it at the end of its wait.
    let started = Instant::now();
    let read = other
        .read("lost", 2, Duration::from_secs(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.state, StreamState::ProducerLost);
    assert!(started.elapsed() < Duration::from_secs(2));
    // A reader coming after learns it at once, after the events.
    let read = other
        .read("lost", 0, Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (read.events.len(), read.state),
        (2, StreamState::ProducerLost)
    );
    // As a client sees it.
    let body = frames(ResumeBody::new(other.clone(), "lost", 1)).await;
    assert_eq!(body.len(), 2);
    assert!(body[0].starts_with("id: 2\n"));
    assert!(body[1].contains("stream_producer_lost"), "{}", body[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_has_a_ttl() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let store = store(&server).await;
    // A finished stream, a cancelled one, a live one, one without events, a failed one.
    for (id, events, end) in [
        ("ttl-finished", 5u64, Some(StreamState::Finished)),
        ("ttl-cancelled", 2, Some(StreamState::Cancelled)),
        ("ttl-live", 3, None),
        ("ttl-empty", 0, None),
        ("ttl-failed", 1, Some(StreamState::Failed)),
    ] {
        store.create(id, LONG).await.unwrap();
        for n in 1..=events {
            store.append(id, n, frame(n)).await.unwrap();
        }
        store.heartbeat(id).await.unwrap();
        store.cancel(id).await.unwrap();
        if let Some(state) = end {
            store.end(id, state).await.unwrap();
        }
    }
    let keys = keys(&server, "*");
    assert!(
        keys.contains(&"tls:{ttl-live}:events".to_owned()),
        "{keys:?}"
    );
    assert!(keys.contains(&"tls:{ttl-live}:meta".to_owned()), "{keys:?}");
    assert!(
        keys.contains(&"tls:{ttl-live}:lease".to_owned()),
        "{keys:?}"
    );
    assert!(keys.iter().all(|k| k.starts_with("tls:{ttl-")), "{keys:?}");
    for key in &keys {
        let Reply::Int(pttl) = server.cmd(&["PTTL", key]) else {
            panic!("PTTL")
        };
        let most = if key.ends_with(":lease") {
            10_000
        } else {
            600_000
        };
        assert!(pttl > 0 && pttl <= most, "{key}: PTTL {pttl}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trimmed_stream_says_so_rather_than_skip() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let store = store(&server).await.max_stream_events(10);
    store.create("long", LONG).await.unwrap();
    for n in 1..=1000 {
        store.append("long", n, frame(n)).await.unwrap();
    }
    store.end("long", StreamState::Finished).await.unwrap();
    let Reply::Int(len) = server.cmd(&["XLEN", "tls:{long}:events"]) else {
        panic!("XLEN")
    };
    assert!(len < 300, "capped near 10 events: {len}");
    let e = store.read("long", 0, Duration::ZERO).await.unwrap_err();
    assert!(e.to_string().contains("no longer kept"), "{e}");
    let (events, state) = read_to_end(&store, "long", 995).await;
    assert_eq!(
        events.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        [996, 997, 998, 999, 1000]
    );
    assert_eq!(state, StreamState::Finished);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_that_cannot_be_keys_are_refused_or_unknown() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let store = store(&server).await;
    let long = "x".repeat(RedisStore::MAX_ID_LEN + 1);
    for bad in [
        "",
        "a}b",
        "a{b",
        "a b",
        "*",
        "a\r\nFLUSHALL",
        "é",
        long.as_str(),
    ] {
        let e = store.create(bad, LONG).await.unwrap_err();
        assert!(e.to_string().contains("cannot be stored"), "{e}");
        assert_unknown(&store, bad).await;
        assert!(store.append(bad, 1, frame(1)).await.is_err());
    }
    assert!(keys(&server, "*").is_empty());
    let fine = "resp_01JABC-def.1:2";
    store.create(fine, LONG).await.unwrap();
    assert_eq!(
        keys(&server, "*"),
        [
            "tls:{resp_01JABC-def.1:2}:lease",
            "tls:{resp_01JABC-def.1:2}:meta"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_waiting_readers_than_connections_all_get_the_event() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let producer = store(&server).await;
    let other = store(&server).await.max_waiting_reads(2);
    producer.create("many", LONG).await.unwrap();
    let readers: Vec<_> = (0..6)
        .map(|_| {
            let other = other.clone();
            tokio::spawn(async move { read_to_end(&other, "many", 0).await })
        })
        .collect();
    for n in 1..=20 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        producer.append("many", n, frame(n)).await.unwrap();
    }
    producer.end("many", StreamState::Finished).await.unwrap();
    for reader in readers {
        let (events, state) = tokio::time::timeout(Duration::from_secs(20), reader)
            .await
            .expect("every reader ends")
            .unwrap();
        assert_eq!(events.len(), 20);
        assert_eq!(state, StreamState::Finished);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_that_redis_closed_are_made_anew() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let (producer, reader) = (store(&server).await, store(&server).await);
    producer.create("reconnect", LONG).await.unwrap();
    producer.append("reconnect", 1, frame(1)).await.unwrap();
    // A waiting read leaves its connection in the pool.
    let read = reader
        .read("reconnect", 1, Duration::from_millis(50))
        .await
        .unwrap()
        .unwrap();
    assert!(read.events.is_empty());
    // Every connection of both stores closed by Redis (a restart, a failover, a `timeout`).
    let Reply::Int(killed) = server.cmd(&["CLIENT", "KILL", "TYPE", "normal"]) else {
        panic!("CLIENT KILL")
    };
    assert!(killed >= 3, "{killed} connections killed");
    producer.append("reconnect", 2, frame(2)).await.unwrap();
    assert!(!producer.heartbeat("reconnect").await.unwrap());
    let read = reader
        .read("reconnect", 0, Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.events.len(), 2);
    let read = reader
        .read("reconnect", 2, Duration::from_millis(100))
        .await
        .unwrap()
        .unwrap();
    assert!(read.events.is_empty());
    assert_eq!(read.state, StreamState::Live);
}

#[tokio::test]
async fn an_unreachable_redis_is_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = RedisStore::connect(&format!("redis://:hunter2@127.0.0.1:{port}"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("cannot reach Redis at redis://***@127.0.0.1:"),
        "{e}"
    );
    assert!(e.contains("is redis-server running?"), "{e}");
    assert!(!e.contains("hunter2"), "{e}");
    let e = RedisStore::connect("http://nope")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a Redis URL"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// Through the layer: produced on one replica, resumed on another.

fn chunk(n: usize) -> String {
    format!(
        "data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"w{n} \"}},\"finish_reason\":null}}]}}\n\n"
    )
}

/// Sends request `id`, marked [`Resumable`], through `ResumeLayer` over `store` (streams kept
/// [`LONG`]) to an upstream that answers an event stream with the body `body` makes: the
/// layer's response.
async fn through_resume_layer<St, B>(
    store: St,
    id: &str,
    body: impl Fn() -> B + Send + 'static,
) -> http::Response<ResumeResponseBody<B, St>>
where
    St: StreamStore,
    B: http_body::Body<Data = Bytes> + Unpin + Send + 'static,
    B::Error: std::fmt::Display + Send + 'static,
{
    let upstream = tower::service_fn(move |_req: Request<()>| {
        let response = http::Response::builder()
            .header("content-type", "text/event-stream")
            .body(body())
            .unwrap();
        std::future::ready(Ok::<_, std::convert::Infallible>(response))
    });
    let service = ServiceBuilder::new()
        .layer(ResumeLayer::new(store).ttl(LONG))
        .service(upstream);
    let mut request = Request::new(());
    request.extensions_mut().insert(Resumable::new(id));
    service.oneshot(request).await.unwrap()
}

/// Starts a resumable stream of `steps` through `ResumeLayer` over `store`: the client's body.
async fn start(
    store: &RedisStore,
    id: &str,
    steps: Vec<Step>,
    dropped: Arc<AtomicBool>,
) -> impl http_body::Body<Data = Bytes, Error = tower_llm_stream::BoxError> + use<> {
    let script = move || {
        let mut body = ScriptBody::new(steps.clone());
        body.dropped = Some(dropped.clone());
        body
    };
    through_resume_layer(store.clone(), id, script)
        .await
        .into_body()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_made_on_one_replica_resumes_on_another_byte_for_byte() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let (a, b) = (store(&server).await, store(&server).await);
    let mut steps = Vec::new();
    for i in 0..20 {
        steps.push(wait_secs(0.02));
        // Two events in one frame now and then: numbered one by one.
        if i % 5 == 4 {
            steps.push(data(format!("{}{}", chunk(i), chunk(100 + i))));
        } else {
            steps.push(data(chunk(i)));
        }
    }
    steps.push(data("data: [DONE]\n\n"));
    let body = start(&a, "resp_e2e", steps, Arc::default()).await;
    let whole = tokio::spawn(frames(body));

    // While it runs: a client on replica B that had 3 events.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let live = frames(ResumeBody::new(b.clone(), "resp_e2e", 3)).await;

    let whole = whole.await.unwrap();
    assert_eq!(whole.len(), 25);
    for (i, frame) in whole.iter().enumerate() {
        assert!(frame.starts_with(&format!("id: {}\n", i + 1)), "{frame}");
    }
    assert!(whole[24].ends_with("data: [DONE]\n\n"));
    assert_eq!(live.concat(), whole[3..].concat(), "resumed live on B");
    // After the end, from any event on.
    for n in [0, 1, 7, 12, 24, 25] {
        let rest = frames(ResumeBody::new(b.clone(), "resp_e2e", n as u64)).await;
        assert_eq!(rest.concat(), whole[n..].concat(), "from {n}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_on_another_replica_stops_the_stream_and_its_upstream() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let (a, b) = (store(&server).await, store(&server).await);
    let dropped = Arc::new(AtomicBool::new(false));
    let steps = vec![data(chunk(0)), data(chunk(1)), Step::Stall];
    let body = start(&a, "resp_cancel", steps, dropped.clone()).await;
    let client = tokio::spawn(frames(body));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let asked = Instant::now();
    assert!(b.cancel("resp_cancel").await.unwrap());
    let got = tokio::time::timeout(HEARTBEAT * 3, client)
        .await
        .expect("the stream ends after a heartbeat")
        .unwrap();
    assert!(asked.elapsed() < HEARTBEAT + Duration::from_secs(2));
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(got[2].contains("stream_cancelled"), "{}", got[2]);
    // The producer drops the upstream body as it returns, right after the end it stored.
    let deadline = Instant::now() + Duration::from_secs(2);
    while !dropped.load(Ordering::SeqCst) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(dropped.load(Ordering::SeqCst), "the upstream is dropped");
    let read = b
        .read("resp_cancel", 2, Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.state, StreamState::Cancelled);
}

// ---------------------------------------------------------------------------------------------
// A measurement, not a test: `cargo test --features redis --test resume_redis -- --ignored
// --nocapture live_tail_latency`.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run it with --ignored --nocapture"]
async fn live_tail_latency() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    const EVENTS: usize = 1000;
    let (producer, tail) = (store(&server).await, store(&server).await);
    producer.create("tail", LONG).await.unwrap();
    let sent: Arc<std::sync::Mutex<Vec<Option<Instant>>>> =
        Arc::new(std::sync::Mutex::new(vec![None; EVENTS + 1]));
    let reader = tokio::spawn(async move {
        let mut got = vec![None; EVENTS + 1];
        let mut after = 0;
        while after < EVENTS as u64 {
            let read = tail
                .read("tail", after, Duration::from_secs(5))
                .await
                .unwrap()
                .unwrap();
            let now = Instant::now();
            for event in read.events {
                got[event.number as usize] = Some(now);
                after = event.number;
            }
        }
        got
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    for n in 1..=EVENTS as u64 {
        // An event every 2 ms: the reader is waiting for each, as a live tail does.
        tokio::time::sleep(Duration::from_millis(2)).await;
        sent.lock().unwrap()[n as usize] = Some(Instant::now());
        producer.append("tail", n, frame(n)).await.unwrap();
    }
    let got = tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .unwrap()
        .unwrap();
    let sent = sent.lock().unwrap();
    let micros: Vec<u64> = (1..=EVENTS)
        .map(|n| (got[n].unwrap() - sent[n].unwrap()).as_micros() as u64)
        .collect();
    println!(
        "live tail, append -> read return, {EVENTS} events, reader on another connection: {}",
        quantiles(micros)
    );
}

// ---------------------------------------------------------------------------------------------
// Measurements under load, not tests: many streams at once through `ResumeLayer` (the
// producer task storing each event as it comes), each tailed live by a client on another
// replica (another `RedisStore`, its own connections). Run with `--release -- --ignored
// --nocapture redis_throughput` (or `redis_memory_per_retained_stream`).

/// An upstream's stream of `events` chat chunks, one per frame, `pace` apart (`None`: back to
/// back, as fast as the producer takes them), noting when it hands each one out: nanoseconds
/// after `base` in `sent[n]`.
struct TimedChunks {
    next: u64,
    events: u64,
    pace: Option<Duration>,
    sleep: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
    base: Instant,
    sent: Arc<[std::sync::atomic::AtomicU64]>,
}

impl http_body::Body for TimedChunks {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        use std::future::Future;
        let this = &mut *self;
        if this.next > this.events {
            return std::task::Poll::Ready(None);
        }
        if let Some(pace) = this.pace {
            let sleep = this
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(pace)));
            std::task::ready!(sleep.as_mut().poll(cx));
            this.sleep = None;
        }
        let n = this.next;
        this.next += 1;
        let frame = openai_chat_chunk(n);
        this.sent[n as usize].store(this.base.elapsed().as_nanos() as u64, Ordering::Relaxed);
        std::task::Poll::Ready(Some(Ok(http_body::Frame::data(frame))))
    }
}

/// Starts stream `id` of `events` chunks through `ResumeLayer` over `producer`, its client
/// gone at once (the stream runs on into the store); when the upstream handed out each event
/// in the returned array.
async fn produce_timed<St: StreamStore>(
    producer: St,
    id: &str,
    events: u64,
    pace: Option<Duration>,
    base: Instant,
) -> Arc<[std::sync::atomic::AtomicU64]> {
    let sent: Arc<[std::sync::atomic::AtomicU64]> = (0..=events)
        .map(|_| std::sync::atomic::AtomicU64::new(0))
        .collect();
    let upstream_sent = sent.clone();
    let chunks = move || TimedChunks {
        next: 1,
        events,
        pace,
        sleep: None,
        base,
        sent: upstream_sent.clone(),
    };
    let response = through_resume_layer(producer, id, chunks).await;
    assert!(matches!(response.body(), ResumeResponseBody::Stored(_)));
    sent
}

/// `streams` streams of `events` chunks at once, each produced into `producer` through the
/// layer and tailed from its start by a `ResumeBody` over `reader` (every event checked byte
/// for byte): the wall time until every tail read its stream's end, and each event's added
/// latency in microseconds (the upstream handing it out to a tail getting it).
async fn under_load<St: StreamStore>(
    producer: St,
    reader: St,
    tag: &str,
    (streams, events, pace): (usize, u64, Option<Duration>),
) -> (Duration, Vec<u64>) {
    use http_body_util::BodyExt;
    let base = Instant::now();
    let tasks: Vec<_> = (0..streams)
        .map(|i| {
            let (producer, reader) = (producer.clone(), reader.clone());
            let id = format!("{tag}-{i}");
            tokio::spawn(async move {
                let sent = produce_timed(producer, &id, events, pace, base).await;
                let mut tail = std::pin::pin!(ResumeBody::new(reader, id, 0));
                let mut micros = Vec::with_capacity(events as usize);
                let mut expected = 1;
                while let Some(frame) = tail.frame().await {
                    let now = base.elapsed().as_nanos() as u64;
                    let frame = frame.unwrap().into_data().unwrap();
                    let line = memchr::memchr(b'\n', &frame).unwrap();
                    let n: u64 = std::str::from_utf8(&frame[4..line])
                        .unwrap()
                        .parse()
                        .unwrap();
                    micros
                        .push(now.saturating_sub(sent[n as usize].load(Ordering::Relaxed)) / 1000);
                    assert_eq!(n, expected, "no gap, no duplicate");
                    assert_eq!(frame[line + 1..], openai_chat_chunk(n)[..]);
                    expected += 1;
                }
                assert_eq!(expected, events + 1, "every event, then the end");
                micros
            })
        })
        .collect();
    let mut micros = Vec::with_capacity(streams * events as usize);
    for task in tasks {
        let left = Duration::from_secs(120).saturating_sub(base.elapsed());
        let got = tokio::time::timeout(left, task)
            .await
            .expect("the round ends within 120 s")
            .unwrap();
        micros.extend(got);
    }
    (base.elapsed(), micros)
}

/// p50, p90, p99 and max of `micros`, as text.
fn quantiles(mut micros: Vec<u64>) -> String {
    micros.sort_unstable();
    let at = |q: f64| micros[((micros.len() as f64 * q) as usize).min(micros.len() - 1)];
    format!(
        "p50 {} us, p90 {} us, p99 {} us, max {} us",
        at(0.5),
        at(0.9),
        at(0.99),
        micros[micros.len() - 1]
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run it with --release -- --ignored --nocapture"]
async fn redis_throughput() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    // Replica A produces, replica B tails: two stores, each with its own connections.
    let (a, b) = (store(&server).await, store(&server).await);
    let memory = MemoryStore::new();
    let pace = Duration::from_millis(20);
    let rounds = [
        // Back to back: the upstream always has the next chunk ready; what the store takes.
        (1, 5_000, None),
        (16, 1_000, None),
        (64, 500, None),
        // At a model's pace (an event every 20 ms, 50 tokens/s per stream): the added latency
        // a live tail sees with that many streams running.
        (64, 200, Some(pace)),
        (256, 200, Some(pace)),
    ];
    for (i, round) in rounds.into_iter().enumerate() {
        let (streams, events, pace) = round;
        let what = match pace {
            None => "back to back".to_owned(),
            Some(pace) => format!("one every {pace:?}"),
        };
        for name in ["redis", "memory"] {
            let tag = format!("{name}-{i}");
            let connections = info_number(&server, "stats", "total_connections_received");
            let (wall, micros) = match name {
                "redis" => under_load(a.clone(), b.clone(), &tag, round).await,
                _ => under_load(memory.clone(), memory.clone(), &tag, round).await,
            };
            let total = streams as u64 * events;
            println!(
                "{name:6} {streams:3} streams x {events:4} events ({what}): {total} events in \
                 {:.2} s, {:.0} events/s; added latency (upstream hands it out -> the tail on \
                 {} gets it): {}",
                wall.as_secs_f64(),
                total as f64 / wall.as_secs_f64(),
                if name == "redis" {
                    "another replica"
                } else {
                    "the same process"
                },
                quantiles(micros)
            );
            if name == "redis" {
                println!(
                    "       connections Redis accepted meanwhile: {}",
                    // Less the one asking.
                    info_number(&server, "stats", "total_connections_received") - connections - 1
                );
            }
        }
    }
}

/// Field `name` of section `section` of `INFO`, a number: `total_connections_received` of
/// `stats` (the one asking included), `used_memory` of `memory`.
fn info_number(server: &RedisServer, section: &str, name: &str) -> i64 {
    let Reply::Bulk(Some(info)) = server.cmd(&["INFO", section]) else {
        panic!("INFO")
    };
    String::from_utf8(info)
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {name} in INFO {section}"))
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run it with --release -- --ignored --nocapture"]
async fn redis_memory_per_retained_stream() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    const STREAMS: usize = 1_000;
    const EVENTS: u64 = 200;
    let store = store(&server).await;
    let base = Instant::now();
    // Finished streams through the layer, 16 at a time; each waited for to its end.
    let finish = |id: String| {
        let store = store.clone();
        async move {
            produce_timed(store.clone(), &id, EVENTS, None, base).await;
            let (events, state) = read_to_end(&store, &id, 0).await;
            assert_eq!(
                (events.len() as u64, state),
                (EVENTS, StreamState::Finished)
            );
        }
    };
    // One first: the scripts loaded, the connections made.
    finish("warm-up".to_owned()).await;
    let before = info_number(&server, "memory", "used_memory");
    for batch in 0..STREAMS / 16 + 1 {
        let tasks: Vec<_> = (batch * 16..((batch + 1) * 16).min(STREAMS))
            .map(|i| tokio::spawn(finish(format!("kept-{i}"))))
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    }
    let after = info_number(&server, "memory", "used_memory");
    let frames: usize = (1..=EVENTS).map(|n| openai_chat_chunk(n).len()).sum();
    let all = keys(&server, "tls:*");
    assert_eq!(all.len(), 2 * (STREAMS + 1), "events and meta, no lease");
    let usage = |key: &str| {
        let Reply::Int(bytes) = server.cmd(&["MEMORY", "USAGE", key, "SAMPLES", "0"]) else {
            panic!("MEMORY USAGE")
        };
        bytes
    };
    let (events_key, meta_key) = (usage("tls:{kept-7}:events"), usage("tls:{kept-7}:meta"));
    let per_stream = (after - before) as f64 / STREAMS as f64;
    println!(
        "redis: {STREAMS} finished streams of {EVENTS} events ({frames} bytes of frames each, \
         {:.0} a frame): used_memory +{} bytes, {per_stream:.0} per stream ({:.2}x its frames, \
         {:.0} bytes per event beyond its frame); MEMORY USAGE of one stream: events {events_key} \
         + meta {meta_key} = {} bytes",
        frames as f64 / EVENTS as f64,
        after - before,
        per_stream / frames as f64,
        (per_stream - frames as f64) / EVENTS as f64,
        events_key + meta_key
    );
}
