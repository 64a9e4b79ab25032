#!/usr/bin/env python3
"""Hostile clients and a hostile upstream against the release proxy, bounded in count and time.

    python3 benches/hostile_probe.py [--proxy target/release/llm-proxy] [--only NAME[,NAME]]

Starts its own proxy (127.0.0.1, a free port, two worker threads, no provider keys from the
environment) and its own mock upstream (a threaded HTTP/1.1 server on 127.0.0.1, playing an
OpenAI-compatible provider `big` and an Anthropic one), then runs each probe:

  trickle          2,000 connections trickling a request line, one byte a second
  stalled_bodies   200 JSON bodies declared 4 MiB, 3.9 MB sent, then nothing
  stalled_uploads  20 transcription uploads declared 25 MiB, 20 MB of file sent, then nothing
  huge_reply       a non-streaming request the proxy folds from ~300 MB of Anthropic deltas
  stalled_reader   a streaming request whose client never reads (its own proxy, --timeout 5)

and prints a Markdown table: what happened, and the proxy's resident memory (VmRSS from
/proc/PID/status, sampled every 0.2 s) before, at the peak and 3 s after the attackers are gone.
Standard library only (Python 3.11); finishes in about three minutes; every process it starts is
killed on the way out. For a closing note, not for CI.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import re
import resource
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter

MiB = 1024 * 1024
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROBES = ["trickle", "stalled_bodies", "stalled_uploads", "huge_reply", "stalled_reader"]
# The whole run must end well within 6 minutes; each probe is bounded on its own, and a probe
# is skipped once the run is past this.
RUN_BUDGET_S = 330.0
RUN_STARTED = time.monotonic()

# The proxy's defaults (examples/proxy/src/cli.rs); only stalled_reader changes one.
DEFAULTS = {
    "--header-timeout": "10",
    "--body-timeout": "30",
    "--max-connections": None,  # (the proxy's open-file soft limit - 64) / 2
    "--max-response-bytes": str(64 * MiB),
    "--stream-deadline": "1800",
    "--timeout": "30",
}
HEADER_TIMEOUT_S = 10.0
BODY_TIMEOUT_S = 30.0


# ---------------------------------------------------------------------------------------------
# Process plumbing: open-file limit, RSS, the proxy


def raise_nofile() -> None:
    """The open-file soft limit raised to the hard limit (this process, or a child before exec)."""
    _raise_nofile()


def proxy_preexec() -> None:
    """In the proxy's process before exec: the open-file limit raised, and SIGKILL for the proxy
    should this script die without its cleanup (PR_SET_PDEATHSIG)."""
    _raise_nofile()
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)
    except Exception:
        pass


def _raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft == resource.RLIM_INFINITY or soft >= hard:
        return
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def rss_mb(pid: int, field: str = "VmRSS") -> float | None:
    """A memory figure of /proc/PID/status in MB: VmRSS, or VmHWM (the peak RSS so far)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return None


def max_connections(pid: int) -> str:
    """The proxy's default --max-connections, from its open-file soft limit (conn.rs)."""
    try:
        soft = int(nofile_of(pid).split()[0])
    except ValueError:
        return "? (from the open-file limit)"
    return f"{max((soft - 64) // 2, 64)} (from the open-file limit)"


def nofile_of(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/limits") as f:
            for line in f:
                if line.startswith("Max open files"):
                    soft, hard = line.split()[3:5]
                    return f"{soft} soft / {hard} hard"
    except OSError:
        pass
    return "?"


class RssSampler:
    """Samples a process's VmRSS every 0.2 s on a thread; keeps the peak."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss", daemon=True)

    def _sample(self) -> None:
        rss = rss_mb(self.pid)
        if rss is not None and (self.peak is None or rss > self.peak):
            self.peak = rss

    def _run(self) -> None:
        self._sample()
        while not self._stop.wait(0.2):
            self._sample()

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sample()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Provider settings the proxy would read from the environment: none reach it but the probe's.
PROVIDER_ENV = re.compile(
    r"^(OPENAI|ANTHROPIC|GEMINI|COHERE|MISTRAL|GROQ|DEEPSEEK|OPENROUTER|OLLAMA|BEDROCK|BIG|AWS)_"
    r"|^PROXY_API_KEY$|^RUST_LOG$"
)


class Proxy:
    """One proxy process: started, waited for (GET /health 200), killed on stop()."""

    started: list["Proxy"] = []

    def __init__(self, binary: str, upstream_port: int, extra: list[str], logdir: str, name: str):
        self.port = free_port()
        self.args = [
            binary,
            "--listen", f"127.0.0.1:{self.port}",
            "--threads", "2",
            "--provider", f"big=http://127.0.0.1:{upstream_port}/v1",
            *extra,
        ]
        self.env_set = {
            "BIG_MODELS": "m",
            "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{upstream_port}/v1",
            "ANTHROPIC_API_KEY": "probe-key",
            "ANTHROPIC_MODELS": "c",
        }
        env = {k: v for k, v in os.environ.items() if not PROVIDER_ENV.match(k)}
        env.update(self.env_set)
        self.log_path = os.path.join(logdir, f"proxy-{name}.log")
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            self.args,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=proxy_preexec,
        )
        Proxy.started.append(self)
        self.pid = self.proc.pid
        self._wait_healthy(15.0)

    def command_line(self) -> str:
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env_set.items())
        return f"{env} {shlex.join(self.args)}"

    def _wait_healthy(self, within: float) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the proxy exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    conn.close()
                    return
                conn.close()
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"GET /health did not answer 200 within {within:.0f} s:\n{self.log_tail()}")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        try:
            self._log.flush()
            with open(self.log_path, "rb") as f:
                return b"".join(f.readlines()[-lines:]).decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


# ---------------------------------------------------------------------------------------------
# The mock upstream


def sse(event: str, data: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def chunk(data: bytes) -> bytes:
    return b"%x\r\n" % len(data) + data + b"\r\n"


# Shapes as in tests/fixtures/anthropic/text_minimal.sse.
ANTHROPIC_START = sse("message_start", {
    "type": "message_start",
    "message": {
        "id": "msg_probe", "type": "message", "role": "assistant", "model": "c", "content": [],
        "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 1, "output_tokens": 1},
    },
}) + sse("content_block_start", {
    "type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""},
})
ANTHROPIC_DELTA = sse("content_block_delta", {
    "type": "content_block_delta", "index": 0,
    "delta": {"type": "text_delta", "text": "x" * (64 * 1024)},
})
ANTHROPIC_END = sse("content_block_stop", {"type": "content_block_stop", "index": 0}) + sse(
    "message_delta", {
        "type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"output_tokens": 5},
    },
) + sse("message_stop", {"type": "message_stop"})
DELTA_CHUNK = chunk(ANTHROPIC_DELTA)
HUGE_BYTES = 300 * MiB
ENDLESS_MAX_S = 60.0


class Mock:
    """A threaded HTTP/1.1 upstream on 127.0.0.1. `POST .../messages` is answered as `mode` says:

    huge     an Anthropic stream of ~300 MB of 64 KiB text deltas, then message_stop
    endless  64 KiB text deltas as fast as they are taken, for at most 60 s

    Anything else gets a 404. Each answered connection is recorded (when it started, bytes sent,
    the last write that went through, whether and when a write failed)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.mode = "huge"
        self.records: list[dict] = []
        self.lock = threading.Lock()
        self._closing = threading.Event()
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, name="mock", daemon=True)
        self._thread.start()

    def reset(self, mode: str) -> None:
        with self.lock:
            self.mode = mode
            self.records = []

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _read_request(conn: socket.socket) -> tuple[str, bytes] | None:
        buf = b""
        while b"\r\n\r\n" not in buf:
            data = conn.recv(65536)
            if not data:
                return None
            buf += data
            if len(buf) > 1 << 20:
                return None
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        path = lines[0].split(" ")[1] if len(lines[0].split(" ")) > 1 else "?"
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        if "content-length" in headers:
            length = int(headers["content-length"])
            while len(rest) < length:
                data = conn.recv(65536)
                if not data:
                    return None
                rest += data
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            while not rest.endswith(b"0\r\n\r\n"):
                data = conn.recv(65536)
                if not data:
                    return None
                rest += data
        return path, rest

    def _serve(self, conn: socket.socket) -> None:
        started = time.monotonic()
        conn.settimeout(ENDLESS_MAX_S)
        try:
            request = self._read_request(conn)
            if request is None:
                return
            path, _body = request
            with self.lock:
                mode = self.mode
            if not path.rstrip("/").endswith("/messages"):
                body = b'{"error":{"type":"not_found_error","message":"the mock serves /v1/messages"}}'
                conn.sendall(
                    b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\n"
                    b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body) + body
                )
                return
            record = {
                "path": path, "mode": mode, "started": started, "sent": 0, "last_progress": None,
                "finished": False, "failed_at": None, "error": None,
            }
            with self.lock:
                self.records.append(record)

            def send(data: bytes) -> None:
                conn.sendall(data)
                record["sent"] += len(data)
                record["last_progress"] = time.monotonic()

            try:
                send(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                    b"transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
                )
                send(chunk(ANTHROPIC_START))
                if mode == "huge":
                    for _ in range(HUGE_BYTES // len(ANTHROPIC_DELTA)):
                        send(DELTA_CHUNK)
                    send(chunk(ANTHROPIC_END) + b"0\r\n\r\n")
                    record["finished"] = True
                else:
                    until = started + ENDLESS_MAX_S
                    while time.monotonic() < until:
                        send(DELTA_CHUNK)
                    record["finished"] = True
            except socket.timeout:
                record["error"] = "blocked for 60 s"
            except OSError as e:
                record["failed_at"] = time.monotonic()
                record["error"] = type(e).__name__
        except OSError:
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def wait_for_record(self, within: float) -> dict | None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            with self.lock:
                if self.records:
                    return self.records[0]
            time.sleep(0.05)
        return None

    def close(self) -> None:
        self._closing.set()
        try:
            self.sock.close()
        except OSError:
            pass
        with self.lock:
            for conn in self._conns:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self._thread.join(2)


# ---------------------------------------------------------------------------------------------
# Helpers for raw HTTP clients


async def read_response(reader: asyncio.StreamReader, timeout: float) -> tuple[int | None, str]:
    """The status and error code of one response; (None, why) if none came."""
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    except asyncio.TimeoutError:
        return None, "no response"
    except asyncio.IncompleteReadError:
        return None, "closed without a response"
    except (ConnectionError, OSError) as e:
        return None, f"error {type(e).__name__}"
    except asyncio.LimitOverrunError:
        return None, "unreadable response head"
    lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        return None, "unreadable status line"
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    body = b""
    try:
        if "content-length" in headers:
            body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), 5)
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            async def chunks() -> bytes:
                out = b""
                while True:
                    size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                    data = await reader.readexactly(size + 2)
                    if size == 0:
                        return out
                    out += data[:-2]
            body = await asyncio.wait_for(chunks(), 5)
    except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError, OSError, ValueError):
        pass
    return status, error_code(body)


def error_code(body: bytes) -> str:
    try:
        return json.loads(body)["error"]["code"] or "-"
    except (ValueError, KeyError, TypeError):
        return "-"


def spread(values: list[float]) -> str:
    if not values:
        return "-"
    lo, med, hi = min(values), statistics.median(values), max(values)
    if hi - lo < 0.05:
        return f"{med:.1f} s"
    return f"{lo:.1f}–{hi:.1f} s (median {med:.1f})"


async def send_slowly_bounded(writer: asyncio.StreamWriter, data: bytes, piece: int = 256 * 1024) -> None:
    """Writes `data` in pieces, waiting for each to drain: the probe holds 256 KiB per socket."""
    view = memoryview(data)
    for at in range(0, len(view), piece):
        writer.write(view[at:at + piece])
        await writer.drain()


def close_all(writers: list[asyncio.StreamWriter]) -> None:
    for writer in writers:
        try:
            writer.transport.abort()
        except Exception:
            pass


# ---------------------------------------------------------------------------------------------
# The probes: each returns what happened (one line); the attackers are gone when it returns.


def probe_trickle(proxy: Proxy, mock: Mock) -> str:
    n, line = 2000, b"POST /v1/chat/completions HTTP/1.1\r\n"

    async def run() -> str:
        connected_at: dict[int, float] = {}
        closed_at: dict[int, float] = {}
        answered: set[int] = set()
        failed: list[str] = []
        writers: list[asyncio.StreamWriter] = []
        go = asyncio.Event()
        start = [0.0]
        gate = asyncio.Semaphore(200)

        async def one(i: int) -> None:
            async with gate:
                try:
                    reader, writer = await asyncio.wait_for(
                        asyncio.open_connection("127.0.0.1", proxy.port), 10)
                except (OSError, asyncio.TimeoutError) as e:
                    failed.append(type(e).__name__)
                    return
            connected_at[i] = time.monotonic()
            writers.append(writer)
            await go.wait()
            for k in range(len(line)):
                try:
                    writer.write(line[k:k + 1])
                    await writer.drain()
                except (ConnectionError, OSError):
                    closed_at[i] = time.monotonic()
                    return
                tick = start[0] + k + 1
                while (left := tick - time.monotonic()) > 0:
                    try:
                        data = await asyncio.wait_for(reader.read(4096), left)
                    except asyncio.TimeoutError:
                        break
                    except (ConnectionError, OSError):
                        closed_at[i] = time.monotonic()
                        return
                    if not data:
                        closed_at[i] = time.monotonic()
                        return
                    answered.add(i)

        tasks = [asyncio.create_task(one(i)) for i in range(n)]
        connect_deadline = time.monotonic() + 20
        while len(connected_at) + len(failed) < n and time.monotonic() < connect_deadline:
            await asyncio.sleep(0.05)
        start[0] = time.monotonic()
        go.set()
        await asyncio.sleep(5)
        open_5 = len(connected_at) - len(closed_at)
        await asyncio.sleep(10)
        open_15 = len(connected_at) - len(closed_at)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        close_all(writers)
        await asyncio.sleep(0.2)
        lifetimes = [closed_at[i] - connected_at[i] for i in closed_at]
        text = (
            f"header timeout 10 s: {len(connected_at)}/{n} connected; open at 5 s: {open_5}, at 15 s: {open_15}; "
            f"{len(closed_at)} closed by the proxy, {spread(lifetimes)} after connecting"
        )
        if answered:
            text += f"; {len(answered)} got bytes back first"
        if failed:
            text += f"; connect failed: {dict(Counter(failed))}"
        return text

    return asyncio.run(run())


def stalled_clients(proxy: Proxy, n: int, head: bytes, body: bytes, wait: float) -> str:
    """`n` clients send `head` and `body` (less than the head declares), then nothing."""

    async def run() -> str:
        writers: list[asyncio.StreamWriter] = []
        outcomes: list[tuple[int | None, str]] = []
        times: list[float] = []
        send_times: list[float] = []
        gate = asyncio.Semaphore(100)
        send_errors: list[str] = []

        async def one() -> None:
            async with gate:
                try:
                    reader, writer = await asyncio.wait_for(
                        asyncio.open_connection("127.0.0.1", proxy.port), 10)
                except (OSError, asyncio.TimeoutError) as e:
                    outcomes.append((None, f"connect failed: {type(e).__name__}"))
                    return
            writers.append(writer)
            began = time.monotonic()
            try:
                writer.write(head)
                await asyncio.wait_for(send_slowly_bounded(writer, body), wait)
                send_times.append(time.monotonic() - began)
            except (ConnectionError, OSError, asyncio.TimeoutError) as e:
                send_errors.append(type(e).__name__)
            # Stalled: send nothing more, keep the connection open, wait for the answer.
            status, code = await read_response(reader, max(1.0, began + wait - time.monotonic()))
            outcomes.append((status, code))
            if status is not None:
                times.append(time.monotonic() - began)
            writer.transport.abort()

        try:
            await asyncio.gather(*(one() for _ in range(n)))
        finally:
            close_all(writers)
        await asyncio.sleep(0.2)
        counted = Counter(f"{s} {c}" if s is not None else c for s, c in outcomes)
        summary = ", ".join(f"{count}× {what}" for what, count in counted.most_common())
        text = (
            f"{summary}; answered {spread(times)} after the head"
            f" (body sent in {spread(send_times)})"
        )
        if send_errors:
            text += f"; send failed: {dict(Counter(send_errors))}"
        return text

    return asyncio.run(run())


def probe_stalled_bodies(proxy: Proxy, mock: Mock) -> str:
    prefix = b'{"model":"big/m","messages":['
    body = prefix + b" " * (3_900_000 - len(prefix))
    head = (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\n"
        b"content-type: application/json\r\ncontent-length: 4194304\r\n\r\n"
    )
    return "body timeout 30 s: " + stalled_clients(proxy, 200, head, body, BODY_TIMEOUT_S + 20)


def probe_stalled_uploads(proxy: Proxy, mock: Mock) -> str:
    boundary = "hostileprobe0123456789"
    part = (
        f"--{boundary}\r\n"
        'content-disposition: form-data; name="file"; filename="probe.wav"\r\n'
        "content-type: audio/wav\r\n\r\n"
    ).encode()
    body = part + b"R" * (20_000_000 - len(part))
    head = (
        b"POST /v1/audio/transcriptions HTTP/1.1\r\nhost: 127.0.0.1\r\n"
        b"content-type: multipart/form-data; boundary=" + boundary.encode() + b"\r\n"
        b"content-length: 26214400\r\n\r\n"
    )
    return "body timeout 30 s: " + stalled_clients(proxy, 20, head, body, BODY_TIMEOUT_S + 20)


def probe_huge_reply(proxy: Proxy, mock: Mock) -> str:
    mock.reset("huge")
    request = json.dumps({
        "model": "anthropic/c", "max_tokens": 5, "messages": [{"role": "user", "content": "Hi"}],
    })
    began = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=90)
    try:
        conn.request("POST", "/v1/chat/completions", body=request,
                     headers={"content-type": "application/json"})
        response = conn.getresponse()
        body = response.read()
        status = response.status
    except OSError as e:
        status, body = None, str(e).encode()
    finally:
        conn.close()
    took = time.monotonic() - began
    record = mock.wait_for_record(5)
    # The mock has stopped writing (refused, or everything sent) within a few seconds.
    deadline = time.monotonic() + 15
    while record and not (record["finished"] or record["error"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    text = f"{status} {error_code(body)} after {took:.1f} s"
    if status == 200:
        text += f" ({len(body) / MiB:.0f} MiB reply)"
    if record is None:
        return text + "; the mock was never asked"
    sent = record["sent"] / MiB
    if record["finished"]:
        text += f"; the mock sent all {sent:.0f} MiB: not dropped"
    elif record["failed_at"] is not None:
        text += (
            f"; the mock's connection was dropped after {sent:.0f} of {HUGE_BYTES / MiB:.0f} MiB"
            f" ({record['error']}, {record['failed_at'] - record['started']:.1f} s in)"
        )
    else:
        text += f"; the mock: {sent:.0f} MiB sent, {record['error'] or 'still sending'}"
    return text


def probe_stalled_reader(proxy: Proxy, mock: Mock) -> str:
    mock.reset("endless")
    request = json.dumps({
        "model": "anthropic/c", "max_tokens": 5, "stream": True,
        "messages": [{"role": "user", "content": "Hi"}],
    }).encode()
    client = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
    try:
        began = time.monotonic()
        client.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\n"
            b"content-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(request) + request
        )
        # Reads nothing.
        record = mock.wait_for_record(10)
        if record is None:
            return "the mock was never asked"
        deadline = time.monotonic() + ENDLESS_MAX_S + 5
        while not (record["finished"] or record["error"]) and time.monotonic() < deadline:
            time.sleep(0.05)
        sent = record["sent"] / MiB
        if record["failed_at"] is None:
            return (f"not dropped: the mock sent {sent:.0f} MiB, then "
                    f"{record['error'] or 'finished its 60 s'}")
        full = record["last_progress"] - began
        dropped = record["failed_at"] - began
        # Was the client's connection closed too? Read what is queued, up to 10 s.
        client.settimeout(10)
        closed, queued = "no (not within 10 s)", 0
        try:
            while True:
                data = client.recv(1 << 20)
                if not data:
                    closed = "yes"
                    break
                queued += len(data)
        except socket.timeout:
            pass
        except OSError as e:
            closed = f"yes ({type(e).__name__})"
        return (
            f"timeout 5 s: the mock's writes stopped going through {full:.1f} s in "
            f"(buffers full, {sent:.0f} MiB sent); its connection was dropped at {dropped:.1f} s, "
            f"{dropped - full:.1f} s later ({record['error']}); the client's connection closed: "
            f"{closed}, {queued / MiB:.0f} MiB were queued for it"
        )
    finally:
        client.close()


# ---------------------------------------------------------------------------------------------


def check_binary(binary: str) -> None:
    if not os.path.exists(binary):
        sys.exit(f"{binary} does not exist: cargo build --release -p llm-proxy")
    built = os.path.getmtime(binary)
    for top in ("src", os.path.join("examples", "proxy", "src")):
        for folder, _, files in os.walk(os.path.join(ROOT, top)):
            for name in files:
                if name.endswith(".rs") and os.path.getmtime(os.path.join(folder, name)) > built:
                    print(f"warning: {binary} is older than {os.path.join(folder, name)}: "
                          "cargo build --release -p llm-proxy", file=sys.stderr)
                    return


def cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--proxy", default=os.path.join(ROOT, "target", "release", "llm-proxy"))
    parser.add_argument("--only", help=f"comma-separated probes of: {', '.join(PROBES)}")
    args = parser.parse_args()
    chosen = PROBES
    if args.only:
        chosen = [p.strip() for p in args.only.split(",") if p.strip()]
        unknown = [p for p in chosen if p not in PROBES]
        if unknown:
            parser.error(f"unknown probe {unknown}: choose from {', '.join(PROBES)}")
    binary = os.path.abspath(args.proxy)
    check_binary(binary)
    raise_nofile()

    probes = {
        "trickle": probe_trickle,
        "stalled_bodies": probe_stalled_bodies,
        "stalled_uploads": probe_stalled_uploads,
        "huge_reply": probe_huge_reply,
        "stalled_reader": probe_stalled_reader,
    }
    rows: list[tuple[str, str, float | None, str, float | None]] = []
    logdir = tempfile.mkdtemp(prefix="hostile-probe-")
    mock = Mock()
    main_proxy: Proxy | None = None
    try:
        print(f"probe open-file limit: {'/'.join(map(str, resource.getrlimit(resource.RLIMIT_NOFILE)))}")
        print(f"mock upstream: http://127.0.0.1:{mock.port}/v1 (provider big: OpenAI-compatible; "
              "anthropic: /v1/messages)")
        for name in chosen:
            if time.monotonic() - RUN_STARTED > RUN_BUDGET_S:
                rows.append((name, "skipped: the run's time budget is spent", None, "-", None))
                continue
            if name == "stalled_reader":
                proxy = Proxy(binary, mock.port, ["--timeout", "5"], logdir, name)
                print(f"\nproxy for {name}: {proxy.command_line()}")
                print(f"  flags in force: --timeout 5 (this probe's); the others default; "
                      f"open files {nofile_of(proxy.pid)}")
            else:
                if main_proxy is None or not main_proxy.alive():
                    main_proxy = Proxy(binary, mock.port, [], logdir, "main")
                    print(f"\nproxy: {main_proxy.command_line()}")
                    flags = ", ".join(
                        f"{k} {v if v is not None else max_connections(main_proxy.pid)}"
                        for k, v in DEFAULTS.items())
                    print(f"  flags in force (defaults): {flags}; open files "
                          f"{nofile_of(main_proxy.pid)}")
                proxy = main_proxy
            print(f"running {name} ...", flush=True)
            before = rss_mb(proxy.pid)
            hwm_before = rss_mb(proxy.pid, "VmHWM")
            after = None
            sampler = RssSampler(proxy.pid)
            with sampler:
                try:
                    result = probes[name](proxy, mock)
                except Exception as e:  # a broken probe is a row, not the end of the run
                    result = f"probe failed: {type(e).__name__}: {e}"
                if not proxy.alive():
                    result += (f"; THE PROXY EXITED ({proxy.proc.returncode}): "
                               + " / ".join(proxy.log_tail(3).splitlines()))
                else:
                    time.sleep(3)
                    after = rss_mb(proxy.pid)
            peak = cell(sampler.peak)
            # A peak shorter than the 0.2 s sampling shows in VmHWM, if it set a new high.
            hwm = rss_mb(proxy.pid, "VmHWM")
            if hwm and hwm_before and sampler.peak and hwm > hwm_before + 1 and hwm > sampler.peak + 1:
                peak += f" (VmHWM {hwm:.0f})"
            rows.append((name, result, before, peak, after))
            print(f"  {result}", flush=True)
            if proxy is not main_proxy:
                proxy.stop()
    finally:
        for proxy in Proxy.started:
            try:
                proxy.stop()
            except Exception:
                try:
                    proxy.proc.kill()
                except Exception:
                    pass
        mock.close()
        for name in os.listdir(logdir):
            os.remove(os.path.join(logdir, name))
        os.rmdir(logdir)

    print()
    print("| probe | what happened | proxy RSS before (MB) | peak (MB) | after (MB) |")
    print("|---|---|---:|---:|---:|")
    for name, result, before, peak, after in rows:
        print(f"| `{name}` | {result.replace('|', '/')} | {cell(before)} | {peak} | {cell(after)} |")
    print(f"\n(total {time.monotonic() - RUN_STARTED:.0f} s; RSS = VmRSS of the proxy, sampled every 0.2 s "
          "(VmHWM: the process's new high, when a peak fell between samples); "
          "'after' = 3 s after the probe's clients are gone)")
    return 0


def _terminate(signum, _frame):
    # SIGTERM/SIGHUP end the run through main's finally: the proxies are killed.
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    sys.exit(main())
