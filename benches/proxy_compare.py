#!/usr/bin/env python3
"""The proxy under load, side by side with the mock upstream directly and with two peers in
front of the same mock, LiteLLM's proxy and Portkey's open-source gateway, in one run on this
machine. Stdlib only.

    python3 benches/proxy_compare.py [--runs 3] [--quick] [--no-litellm] [--no-portkey] [--json OUT]

Builds the release proxy (llm-proxy) and the bench tools (mock_upstream, loadgen, tcp_relay, proxy_floor), starts three mock upstreams
(fast: 20 events back to back; paced: 20 events 50 ms apart; idle: the first event, then
silence), the proxy in front of them (`--provider fast=… paced=… idle=…`, its default INFO
log to a file), when `setup.sh litellm` has installed it LiteLLM in front of the same mocks,
and Portkey's gateway (below), then measures (medians of --runs runs):

  throughput  the fast stream at 64 concurrent streams: requests/s and events/s, and the CPU
              time of the proxy process (and of each peer's process tree) per request
  dedicated   the same with each side on a core of its own (load generator and mock on core
              0, the target on core 1; direct: core 0 only): whether the target keeps up with
              what one core of client and upstream produces, as on separate machines
  latency     the paced stream at 1, 100 and 1,000 concurrent streams (arrivals spread over a
              stream's duration): time to first event and end to end, p50/p99; the added
              latency = through the target - direct; requests/s against direct's (throughput
              at a real model's pace); CPU per request
  instructions  the proxy under valgrind's callgrind (one runtime thread, 8 concurrent fast
              streams): instructions per request, repeatable whatever else the machine does
              (timings here move by tens of percent), so changes compare; needs valgrind; our
              proxy only (the peers run on interpreters: no comparable count)
  nginx       the method of issue 20's independent run: nginx (one worker) serving the fast
              stream as a static file (the mock's 23 events, about 4.6 KB), wrk -t1 -c64 for
              10 s against it directly, through the proxy and through the proxy without
              layers, alternating, --runs times: requests/s against direct's, the proxy's CPU
              per request; needs nginx and wrk (Debian: apt-get install nginx wrk), skipped
              with a message without them
  idle        10,000 streams held open at once on the idle stream: the peak RSS of a fresh
              proxy process, with HTTP/1.1 and with HTTP/2 (--upstream-http2) to the upstream
              (LiteLLM: 1,000 streams, see --litellm-idle; Portkey: 1,000 streams in a fresh
              gateway process per run, see --portkey-idle)

Portkey's gateway (npm `@portkey-ai/gateway`, PORTKEY_VERSION below) is installed on first use
with npm into $XDG_CACHE_HOME/tower-llm-stream-bench/portkey (default ~/.cache/…), skipped with a
message without node and npm (or with --no-portkey). It runs as its Docker image runs it, `node
build/start-server.js` (here `--port=N --headless`: no console UI; it has no listen address
option, so it listens on every interface for the run), with @hono/node-server pinned
to 1.13.5 and patched as Portkey's own lockfile and patches/ do (later 1.x releases fail every
request with "TypeError: immutable", Portkey-AI/gateway#1389). One node process, no worker
processes; requests reach the mock as `x-portkey-provider: openai` with `x-portkey-custom-host:
http://127.0.0.1:PORT/v1` (the load generator's --header), the mock's stream relayed event by
event (loadgen checks every stream whole: 20 content events and [DONE]). Two behaviours of
Portkey's show in the figures: it holds every stream's first event 25 ms (a sleep in its stream
handler), and a client that leaves does not close the upstream stream (hence a fresh process
per idle run).

Two floors are measured beside the proxy. A bare TCP relay (the bench tools' tcp_relay: bytes copied
both ways, nothing parsed; throughput and latency): what a second process in the path costs
on this machine before any HTTP work. The proxy without layers (proxy_floor, "--without-layers" here; every scenario): the
same code, routing, request rewriting and pooled hyper client and server, the response
relayed untouched: what the HTTP work costs before the layers.

The load generator, the mocks and the proxy share the machine's cores: every figure includes
that contention, equally for each target. Prints a Markdown report; --json writes the raw
figures.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "target" / "release"


def proxy_command(extra) -> list[str]:
    """The proxy binary and its flags; "--without-layers" picks the floor (bench tools' proxy_floor)."""
    extra = list(extra)
    if "--without-layers" in extra:
        extra.remove("--without-layers")
        return [str(BIN / "proxy_floor"), *extra]
    return [str(BIN / "llm-proxy"), *extra]
OH = Path(os.environ.get("ORACLES_HOME", Path.home() / ".cache" / "sse-oracles"))
LITELLM = OH / "venv-litellm" / "bin" / "litellm"
LITELLM_KEY = "sk-bench-1234567890abcdef"
PORTKEY_VERSION = "1.15.2"
# Portkey asks for @hono/node-server ^1.3.3; its lockfile has 1.13.5 (and patches/ a one-line
# fix to it); with 1.14 and later every response fails with "TypeError: immutable" (#1389).
PORTKEY_NODE_SERVER = "1.13.5"
PORTKEY_HOME = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tower-llm-stream-bench" / "portkey"
PORTKEY_KEY = "sk-bench-upstream"
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


RELAY = "bare TCP relay (floor)"
PORTKEY = "Portkey gateway"
BARE = "proxy without layers (floor)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on {port} after {timeout} s")


def process_tree(pid: int) -> list[int]:
    """A process and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(children.get(p, []))
    return tree


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and all its descendants, in seconds."""
    total = 0.0
    for p in process_tree(pid):
        try:
            stat = Path(f"/proc/{p}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        total += (int(fields[11]) + int(fields[12])) / TICK
    return total


def rss_bytes(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except OSError:
        return 0


def pin(pid: int, cpus: set[int]) -> None:
    """Moves every thread of a process and of its descendants to `cpus`."""
    for p in process_tree(pid):
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                os.sched_setaffinity(int(tid), cpus)
        except OSError:
            pass


def package_version(directory: Path) -> str | None:
    try:
        return json.loads((directory / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


def portkey_install() -> Path | None:
    """Portkey's gateway server script, installed with npm into PORTKEY_HOME when missing (or
    another version); None, with a message, without node or npm or when npm fails."""
    gateway = PORTKEY_HOME / "node_modules" / "@portkey-ai" / "gateway"
    script = gateway / "build" / "start-server.js"
    server = PORTKEY_HOME / "node_modules" / "@hono" / "node-server"
    patched = "return await responseViaResponseObject(res, outgoing, options);"

    def ready() -> bool:
        try:
            return (package_version(gateway) == PORTKEY_VERSION
                    and package_version(server) == PORTKEY_NODE_SERVER
                    and not (gateway / "node_modules" / "@hono" / "node-server").exists()
                    and patched in (server / "dist" / "index.mjs").read_text())
        except OSError:
            return False

    if not shutil.which("node"):
        print("(Portkey skipped: no `node` on PATH; Portkey's gateway needs Node.js 18 or later)", file=sys.stderr)
        return None
    if ready():
        return script
    if not shutil.which("npm"):
        print(f"(Portkey skipped: not installed at {PORTKEY_HOME} and no `npm` on PATH to install it)", file=sys.stderr)
        return None
    print(f"(installing @portkey-ai/gateway@{PORTKEY_VERSION} into {PORTKEY_HOME})", file=sys.stderr)
    PORTKEY_HOME.mkdir(parents=True, exist_ok=True)
    (PORTKEY_HOME / "package.json").write_text(json.dumps(
        {"private": True, "overrides": {"@hono/node-server": PORTKEY_NODE_SERVER}}, indent=1) + "\n")
    # --ignore-scripts: the one install script is Portkey's patch-package, whose patches are not
    # in the npm package; the one patch that matters is applied below.
    done = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--ignore-scripts", "--save-exact",
                           f"@portkey-ai/gateway@{PORTKEY_VERSION}"], cwd=PORTKEY_HOME, capture_output=True, text=True)
    if done.returncode:
        print(f"(Portkey skipped: npm install failed:\n{(done.stderr or done.stdout).strip()[-2000:]})", file=sys.stderr)
        return None
    # Portkey's patches/@hono+node-server+1.13.5.patch: a failure while the response streams is
    # handled as a response error instead of escaping as an unhandled rejection.
    index = server / "dist" / "index.mjs"
    try:
        text = index.read_text()
        index.write_text(text.replace("return responseViaResponseObject(res, outgoing, options);", patched, 1))
    except OSError:
        pass
    if not ready():
        print(f"(Portkey skipped: the install in {PORTKEY_HOME} is not @portkey-ai/gateway {PORTKEY_VERSION} with "
              f"@hono/node-server {PORTKEY_NODE_SERVER}, patched)", file=sys.stderr)
        return None
    return script


def loadgen(url: str, model: str, concurrency: int, requests: int, *, expect: int | None = 20,
            hold_ms: int | None = None, key: str | None = None, ramp_ms: int = 0,
            cpus: set[int] | None = None, headers: list[str] = ()) -> dict:
    cmd = [str(BIN / "loadgen"), "--url", url, "--model", model, "--concurrency", str(concurrency),
           "--requests", str(requests), "--json"]
    for header in headers:
        cmd += ["--header", header]
    if expect is not None:
        cmd += ["--expect-content", str(expect)]
    if hold_ms is not None:
        cmd += ["--hold-ms", str(hold_ms)]
    if key:
        cmd += ["--api-key", key]
    if ramp_ms:
        cmd += ["--ramp-ms", str(ramp_ms)]
    done = subprocess.run(cmd, capture_output=True, text=True,
                          preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)
    try:
        report = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise SystemExit(f"loadgen failed: {done.stderr}\n{done.stdout}")
    return report


class Target:
    """`headers`: per stream (fast, paced, idle), header lines sent with each request (Portkey's
    routing). `share`: a slow peer gets 1/share of the throughput scenarios' requests (and half of
    the latency scenario's)."""

    def __init__(self, name: str, base: str, models: dict[str, str], pid: int | None, key: str | None = None,
                 headers: dict[str, list[str]] | None = None, share: int = 1):
        self.name, self.base, self.models, self.pid, self.key = name, base, models, pid, key
        self.headers, self.share = headers or {}, share

    def url(self) -> str:
        return f"{self.base}/v1/chat/completions"


def hold_idle(t: "Target", streams: int, baseline: int) -> dict:
    """Holds `streams` idle streams open through `t` for 12 s; its peak RSS meanwhile."""
    # Long enough for every stream to be open at once (opening 10,000 takes seconds).
    lg = subprocess.Popen(
        [str(BIN / "loadgen"), "--url", t.url(), "--model", t.models["idle"], "--concurrency", str(streams),
         "--requests", str(streams), "--hold-ms", "12000", "--json"] + (["--api-key", t.key] if t.key else [])
        + [arg for header in t.headers.get("idle", []) for arg in ("--header", header)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = baseline
    while lg.poll() is None:
        peak = max(peak, rss_bytes(t.pid))
        time.sleep(0.05)
    out = json.loads(lg.stdout.read().strip().splitlines()[-1])
    time.sleep(1.0)
    baseline = min(baseline, rss_bytes(t.pid))
    return {"streams": streams, "held": out["max_open"], "ok": out["ok"], "baseline_rss": baseline,
            "peak_rss": peak, "per_stream_bytes": (peak - baseline) / max(out["max_open"], 1)}


NGINX_CONF = """daemon off;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path {work}/nginx-body;
    proxy_temp_path {work}/nginx-proxy;
    fastcgi_temp_path {work}/nginx-fastcgi;
    uwsgi_temp_path {work}/nginx-uwsgi;
    scgi_temp_path {work}/nginx-scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            root {work}/www;
            default_type text/event-stream;
            # The stream is a static file; a POST to a static file is a 405, answered with the
            # file instead.
            error_page 405 =200 $uri;
        }}
    }}
}}
"""

WRK_POST = """wrk.method = "POST"
wrk.body = '{"model":"MODEL","stream":true,"messages":[{"role":"user","content":"hi"}]}'
wrk.headers["Content-Type"] = "application/json"
"""


def nginx_wrk_tools() -> tuple[str, str] | None:
    """nginx and wrk, or None with a message."""
    nginx = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)
    wrk = shutil.which("wrk")
    if nginx and wrk:
        return nginx, wrk
    print("(nginx/wrk scenario skipped: it needs nginx and wrk on PATH; on Debian: apt-get install nginx wrk)",
          file=sys.stderr)
    return None


def start_nginx(start, nginx: str, work: Path, stream: bytes) -> int:
    """nginx serving `stream` at /v1/chat/completions (to POST too) on a free port."""
    www = work / "www" / "v1" / "chat"
    www.mkdir(parents=True, exist_ok=True)
    (www / "completions").write_bytes(stream)
    for d in (work, work / "www", work / "www" / "v1", www):
        d.chmod(0o755)  # nginx's worker may run as another user
    (www / "completions").chmod(0o644)
    port = free_port()
    conf = work / "nginx.conf"
    conf.write_text(NGINX_CONF.format(work=work, port=port))
    start([nginx, "-c", str(conf), "-e", str(work / "nginx-error.log")], "nginx.log")
    wait_port(port)
    return port


def wrk_run(wrk: str, url: str, model: str, work: Path, seconds: int, pid: int | None) -> dict:
    """One wrk run (one thread, 64 connections) POSTing a streaming chat request: requests/s, the
    responses that were not 2xx, and `pid`'s CPU per request."""
    script = work / f"wrk-{model.replace('/', '-')}.lua"
    script.write_text(WRK_POST.replace("MODEL", model))
    before = cpu_seconds(pid) if pid else 0.0
    done = subprocess.run([wrk, "-t1", "-c64", f"-d{seconds}s", "-s", str(script), url],
                          capture_output=True, text=True)
    out = done.stdout
    try:
        rps = float(next(l for l in out.splitlines() if l.startswith("Requests/sec:")).split()[1])
        total = int(next(l for l in out.splitlines() if "requests in" in l).split()[0])
    except (StopIteration, ValueError, IndexError):
        raise SystemExit(f"wrk failed against {url}: {done.stderr}\n{out}")
    bad = next((int(l.split()[-1]) for l in out.splitlines() if l.strip().startswith("Non-2xx")), 0)
    errors = next((l.strip() for l in out.splitlines() if l.strip().startswith("Socket errors")), None)
    cpu = (cpu_seconds(pid) - before) / max(total, 1) * 1e6 if pid else None
    return {"requests_per_s": rps, "requests": total, "non_2xx": bad, "socket_errors": errors,
            "cpu_us_per_request": cpu}


def instructions_per_request(start, mock_port: int, work: Path, requests: int, extra: tuple[str, ...] = ()) -> float:
    """The proxy's instructions per fast-stream request, counted by callgrind."""
    port = free_port()
    for old in work.glob("callgrind.out*"):
        old.unlink()
    out = work / "callgrind.out"
    p = start(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *proxy_command(extra),
               "--listen", f"127.0.0.1:{port}", "--threads", "1", "--timeout", "900",
               "--provider", f"fast=http://127.0.0.1:{mock_port}"], "proxy-callgrind.log",
              {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "info")})
    try:
        wait_port(port, 120)
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        loadgen(url, "fast/m", 8, 200)
        subprocess.run(["callgrind_control", "-z", str(p.pid)], capture_output=True, check=True)
        r = loadgen(url, "fast/m", 8, requests)
        subprocess.run(["callgrind_control", "-d", str(p.pid)], capture_output=True, check=True)
        dumps = sorted(work.glob("callgrind.out.*"), key=lambda f: f.stat().st_size)
        summary = next(l for l in dumps[-1].read_text().splitlines() if l.startswith("summary:"))
        return int(summary.split()[1]) / r["requests"]
    finally:
        p.terminate()
        p.wait()


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="small loads (a smoke run, not figures)")
    ap.add_argument("--no-litellm", action="store_true")
    ap.add_argument("--litellm-idle", type=int, default=1000)
    ap.add_argument("--no-portkey", action="store_true", help="leave Portkey's gateway out (else installed when missing)")
    ap.add_argument("--portkey-idle", type=int, default=1000,
                    help="idle streams held through Portkey (as LiteLLM's: 10,000 at once overwhelm its one node "
                         "process on 2 cores, 12%% failed, first events after 7-54 s)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--only", default="throughput,dedicated,instructions,latency,nginx,idle",
                    help="comma list of scenarios to run")
    a = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 200_000) if hard != resource.RLIM_INFINITY else 200_000
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))

    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "llm-proxy", "-p", "llm-bench-tools", "--bins"],
                   cwd=ROOT, check=True)
    portkey_js = None if a.no_portkey else portkey_install()
    work = Path(tempfile.mkdtemp(prefix="proxy-compare-"))
    procs: list[subprocess.Popen] = []

    def start(cmd: list[str], log: str, env: dict | None = None) -> subprocess.Popen:
        p = subprocess.Popen(cmd, stdout=open(work / log, "w"), stderr=subprocess.STDOUT, env=env,
                             start_new_session=True)
        procs.append(p)
        return p

    try:
        mocks = {
            "fast": ["--events", "20", "--interval-ms", "0"],
            "paced": ["--events", "20", "--interval-ms", "50"],
            "idle": ["--events", "20", "--interval-ms", "600000"],
        }
        mock_ports, mock_pids = {}, {}
        for name, args in mocks.items():
            port = free_port()
            p = start([str(BIN / "mock_upstream"), "--listen", f"127.0.0.1:{port}", "--threads", "1", *args], f"mock-{name}.log")
            mock_ports[name], mock_pids[name] = port, p.pid
        for port in mock_ports.values():
            wait_port(port)

        def start_proxy(extra: list[str], log: str) -> tuple[subprocess.Popen, int]:
            port = free_port()
            args = [*proxy_command(extra), "--listen", f"127.0.0.1:{port}", "--timeout", "900"]
            for name, mport in mock_ports.items():
                args += ["--provider", f"{name}=http://127.0.0.1:{mport}"]
            p = start(args, log, env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "info")})
            wait_port(port)
            return p, port

        proxy, proxy_port = start_proxy([], "proxy.log")
        # The second floor: the same proxy binary, routing, request rewriting and upstream pool
        # (hyper server and client), with no layer on the response (--without-layers).
        bare_proxy, bare_port = start_proxy(["--without-layers"], "proxy-without-layers.log")

        # "direct": the load generator against the mock itself; its CPU figure is the mock's
        # own, a minimal hyper server streaming the same events, for scale.
        direct = {n: Target("direct", f"http://127.0.0.1:{p}", {n: "m"}, mock_pids[n]) for n, p in mock_ports.items()}
        ours = Target("tower-llm-stream proxy", f"http://127.0.0.1:{proxy_port}", {n: f"{n}/m" for n in mocks}, proxy.pid)
        targets = [ours]
        bare = Target(BARE, f"http://127.0.0.1:{bare_port}", ours.models, bare_proxy.pid)
        # The floor: a bare TCP relay (examples/tcp_relay) in front of the fast and the paced
        # mock, what a second process in the path costs here before any HTTP work.
        relay = {}
        for name in ("fast", "paced"):
            port = free_port()
            p = start([str(BIN / "tcp_relay"), "--listen", f"127.0.0.1:{port}", "--upstream",
                       f"127.0.0.1:{mock_ports[name]}"], f"relay-{name}.log")
            wait_port(port)
            relay[name] = Target(RELAY, f"http://127.0.0.1:{port}", {name: "m"}, p.pid)

        litellm = None
        if not a.no_litellm and LITELLM.exists():
            port = free_port()
            config = work / "litellm.yaml"
            lines = ["model_list:"]
            for name, mport in mock_ports.items():
                lines += [f"  - model_name: {name}", "    litellm_params:", "      model: openai/m",
                          f"      api_base: http://127.0.0.1:{mport}/v1", "      api_key: none"]
            lines += ["general_settings:", f"  master_key: {LITELLM_KEY}"]
            config.write_text("\n".join(lines) + "\n")
            env = {**os.environ, "LITELLM_LOG": "ERROR"}
            p = start([str(LITELLM), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)], "litellm.log", env)
            wait_port(port, 240)
            litellm = Target("LiteLLM proxy", f"http://127.0.0.1:{port}", {n: n for n in mocks}, p.pid, LITELLM_KEY,
                             share=40)
            targets.append(litellm)
        elif not a.no_litellm:
            print(f"(LiteLLM not installed at {LITELLM}: run ../shared/oracles/setup.sh litellm)", file=sys.stderr)

        def start_portkey(log: str) -> tuple[subprocess.Popen, Target]:
            """Portkey's gateway on a free port, the mocks reached through its routing headers;
            checked with one stream of each kind that arrives whole."""
            port = free_port()
            p = start(["node", str(portkey_js), f"--port={port}", "--headless"], log)
            wait_port(port)
            headers = {n: ["x-portkey-provider: openai", f"x-portkey-custom-host: http://127.0.0.1:{mport}/v1"]
                       for n, mport in mock_ports.items()}
            t = Target(PORTKEY, f"http://127.0.0.1:{port}", {n: "m" for n in mocks}, p.pid, PORTKEY_KEY, headers, 4)
            for stream in ("fast", "paced"):
                r = loadgen(t.url(), t.models[stream], 1, 1, key=t.key, headers=t.headers[stream])
                if r["ok"] != 1:
                    raise SystemExit(f"Portkey's gateway fails a {stream} stream ({r['first_failure'] or 'events lost'}, "
                                     f"{r['events']} events); its log, {work / log}:\n{(work / log).read_text()[-3000:]}")
            return p, t

        portkey = None
        if portkey_js:
            _, portkey = start_portkey("portkey.log")
            targets.append(portkey)
        peers = [t for t in (litellm, portkey) if t]

        scale = 10 if a.quick else 1
        results: dict = {"machine": machine(), "runs": a.runs, "quick": a.quick, "throughput": {}, "dedicated": {}, "instructions": None, "latency": {}, "nginx": {}, "idle": {}}
        if portkey:
            results["portkey"] = {"portkey": PORTKEY_VERSION, "node": subprocess.run(
                ["node", "--version"], capture_output=True, text=True).stdout.strip()}

        # Warm up every target (connection pools, LiteLLM's lazy imports).
        for t in [direct["fast"], bare, *targets]:
            loadgen(t.url(), t.models["fast"], 16, 200, key=t.key, headers=t.headers.get("fast", []))
        # Memory a target holds before any large load: the idle figures are measured from it
        # (memory freed after a run is not always returned to the system).
        warm_rss = {t.name: rss_bytes(t.pid) for t in targets}

        only = set(a.only.split(","))
        # Throughput on the fast stream.
        requests = 20_000 // scale
        for t in [direct["fast"], relay["fast"], bare, *targets] if "throughput" in only else []:
            n = requests if t.share == 1 else max(requests // t.share, 100)
            runs = []
            for _ in range(a.runs):
                before = cpu_seconds(t.pid) if t.pid else 0.0
                r = loadgen(t.url(), t.models["fast"], 64, n, key=t.key, headers=t.headers.get("fast", []))
                r["cpu_us_per_request"] = ((cpu_seconds(t.pid) - before) / r["requests"] * 1e6) if t.pid else None
                runs.append(r)
            results["throughput"][t.name] = runs
            print(f"throughput {t.name}: {median([r['requests_per_s'] for r in runs]):.0f} req/s", file=sys.stderr)

        # The same load with each side on a core of its own: the load generator and the mock on
        # core 0, the target on core 1 (ours with one runtime thread); direct has core 0 only.
        cores = sorted(os.sched_getaffinity(0))
        if "dedicated" in only and len(cores) >= 2:
            client_cpu, target_cpu = {cores[0]}, {cores[1]}
            pinned, pinned_port = start_proxy(["--threads", "1"], "proxy-dedicated.log")
            pinned_target = Target(ours.name, f"http://127.0.0.1:{pinned_port}", ours.models, pinned.pid)
            pinned_bare, pinned_bare_port = start_proxy(["--threads", "1", "--without-layers"],
                                                        "proxy-without-layers-dedicated.log")
            bare_target = Target(BARE, f"http://127.0.0.1:{pinned_bare_port}", ours.models, pinned_bare.pid)
            pin(mock_pids["fast"], client_cpu)
            for t in [direct["fast"], bare_target, pinned_target, *peers]:
                if t is not direct["fast"]:
                    pin(t.pid, target_cpu)
                n = requests if t.share == 1 else max(requests // t.share, 100)
                loadgen(t.url(), t.models["fast"], 16, 200, key=t.key, cpus=client_cpu, headers=t.headers.get("fast", []))
                runs = []
                for _ in range(a.runs):
                    before = cpu_seconds(t.pid)
                    r = loadgen(t.url(), t.models["fast"], 64, n, key=t.key, cpus=client_cpu,
                                headers=t.headers.get("fast", []))
                    r["cpu_us_per_request"] = (cpu_seconds(t.pid) - before) / r["requests"] * 1e6
                    runs.append(r)
                results["dedicated"][t.name] = runs
                print(f"dedicated {t.name}: {median([r['requests_per_s'] for r in runs]):.0f} req/s", file=sys.stderr)
                if t in peers:
                    pin(t.pid, set(cores))
            pin(mock_pids["fast"], set(cores))
            for p in (pinned, pinned_bare):
                p.terminate()
                p.wait()

        if "instructions" in only and shutil.which("valgrind") and shutil.which("callgrind_control"):
            results["instructions"] = instructions_per_request(start, mock_ports["fast"], work, 2000 // scale)
            print(f"instructions: {results['instructions']:,.0f} per request", file=sys.stderr)
            results["instructions_without_layers"] = instructions_per_request(
                start, mock_ports["fast"], work, 2000 // scale, ("--without-layers",))
            print(f"instructions without layers: {results['instructions_without_layers']:,.0f} per request",
                  file=sys.stderr)

        # Latency on the paced stream (20 events, 50 ms apart: about 1.2 s per stream). The
        # workers start spread over one stream's duration, so requests arrive steadily rather
        # than in synchronized waves; one request at a time shows the unloaded cost.
        for concurrency in (1, 100, 1000) if "latency" in only else ():
            n = 50 if concurrency == 1 else max(concurrency * 4 // scale, concurrency)
            for t in [direct["paced"], relay["paced"], bare, *targets]:
                c = concurrency
                m = n if t.share == 1 else max(n // 2, c)
                runs = []
                for _ in range(a.runs):
                    before = cpu_seconds(t.pid) if t.pid else 0.0
                    r = loadgen(t.url(), t.models["paced"], c, m, key=t.key, ramp_ms=0 if c == 1 else 1200,
                                headers=t.headers.get("paced", []))
                    r["cpu_us_per_request"] = ((cpu_seconds(t.pid) - before) / r["requests"] * 1e6) if t.pid else None
                    runs.append(r)
                results["latency"].setdefault(str(concurrency), {})[t.name] = runs
                print(f"latency c={concurrency} {t.name}: ttfe p50 {median([r['ttfe_us']['p50'] for r in runs]):.0f} us",
                      file=sys.stderr)

        # The nginx/wrk method: nginx serving the fast stream as a static file, wrk against it
        # directly and through the proxies, alternating.
        tools = nginx_wrk_tools() if "nginx" in only else None
        if tools:
            nginx, wrk = tools
            stream = urllib.request.urlopen(urllib.request.Request(
                f"http://127.0.0.1:{mock_ports['fast']}/v1/chat/completions",
                data=b'{"model":"m","stream":true,"stream_options":{"include_usage":true}}',
                headers={"content-type": "application/json"})).read()
            nginx_port = start_nginx(start, nginx, work, stream)
            via = ["--provider", f"nginx=http://127.0.0.1:{nginx_port}"]
            sides = [("direct (nginx)", f"http://127.0.0.1:{nginx_port}/v1/chat/completions", "m", None)]
            for name, extra in ((ours.name, []), (BARE, ["--without-layers"])):
                p, port = start_proxy([*extra, *via], f"proxy-nginx-{len(sides)}.log")
                sides.append((name, f"http://127.0.0.1:{port}/v1/chat/completions", "nginx/m", p.pid))
                # The stream arrives whole through it (wrk does not look).
                r = loadgen(sides[-1][1], "nginx/m", 1, 1)
                if r["ok"] != 1:
                    raise SystemExit(f"the nginx stream through {name} is not whole: {r}")
            seconds = 2 if a.quick else 10
            for _ in range(a.runs):
                for name, url, model, pid in sides:
                    results["nginx"].setdefault(name, []).append(wrk_run(wrk, url, model, work, seconds, pid))
            for name, runs in results["nginx"].items():
                print(f"nginx/wrk {name}: {median([r['requests_per_s'] for r in runs]):.0f} req/s", file=sys.stderr)
            results["nginx_stream_bytes"] = len(stream)

        # Idle streams held open: the peak RSS of a fresh proxy process (memory freed by earlier
        # scenarios stays fragmented in glibc's heap), with HTTP/1.1 and HTTP/2 upstream, each
        # beside its own floor (goal 3 sets a target for each); LiteLLM as it is after the other
        # scenarios.
        variants = [(ours.name, []), (f"{ours.name}, --upstream-http2", ["--upstream-http2"]),
                    (BARE, ["--without-layers"]),
                    (f"{BARE}, --upstream-http2", ["--without-layers", "--upstream-http2"])]
        for name, extra in variants if "idle" in only else []:
            runs = []
            for i in range(a.runs):
                p, port = start_proxy(extra, f"proxy-idle-{len(runs)}.log")
                t = Target(name, f"http://127.0.0.1:{port}", ours.models, p.pid)
                loadgen(t.url(), t.models["fast"], 16, 200)
                runs.append(hold_idle(t, 10_000 // scale, rss_bytes(p.pid)))
                p.terminate()
                p.wait()
            results["idle"][name] = runs
            print(f"idle {name}: peak {median([r['peak_rss'] for r in runs]) / 2**20:.1f} MiB", file=sys.stderr)
        if litellm and "idle" in only:
            runs = [hold_idle(litellm, a.litellm_idle // scale, warm_rss[litellm.name]) for _ in range(a.runs)]
            results["idle"][litellm.name] = runs
            print(f"idle {litellm.name}: peak {median([r['peak_rss'] for r in runs]) / 2**20:.1f} MiB", file=sys.stderr)
        if portkey and "idle" in only:
            # A fresh gateway per run, as for the proxy: Portkey keeps reading the upstream of a
            # stream whose client left, so each run's streams stay open upstream (and in memory)
            # until the idle mock ends them.
            runs = []
            for i in range(a.runs):
                p, t = start_portkey(f"portkey-idle-{i}.log")
                loadgen(t.url(), t.models["fast"], 16, 200, key=t.key, headers=t.headers["fast"])
                runs.append(hold_idle(t, a.portkey_idle // scale, rss_bytes(p.pid)))
                p.terminate()
                p.wait()
            results["idle"][portkey.name] = runs
            print(f"idle {portkey.name}: peak {median([r['peak_rss'] for r in runs]) / 2**20:.1f} MiB", file=sys.stderr)

        if a.json:
            a.json.parent.mkdir(parents=True, exist_ok=True)
            a.json.write_text(json.dumps(results, indent=1))
        print(markdown(results, ours.name, [(t.name, short) for t, short in ((litellm, "LiteLLM"), (portkey, "Portkey")) if t]))
        lost = sum(r["lost"] + r["failures"] + r["http_errors"]
                   for section in (results["throughput"], results["dedicated"]) for runs in section.values() for r in runs)
        lost += sum(r["lost"] + r["failures"] + r["http_errors"]
                    for per in results["latency"].values() for runs in per.values() for r in runs)
        lost += sum(r["non_2xx"] for runs in results["nginx"].values() for r in runs)
        if lost:
            print(f"{lost} streams lost events or failed", file=sys.stderr)
            sys.exit(1)
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)


def machine() -> dict:
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), "?")
    return {"cpu": cpu, "cores": os.cpu_count(), "kernel": os.uname().release,
            "rustc": subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()}


def markdown(r: dict, ours: str, peers: list[tuple[str, str]]) -> str:
    """`peers`: (target name, short name) of the peers measured."""
    out = [f"Machine: {r['machine']['cpu']}, {r['machine']['cores']} cores, {r['machine']['rustc']}; "
           f"medians of {r['runs']} runs{' (quick: small loads)' if r['quick'] else ''}."
           + (f" Portkey gateway {r['portkey']['portkey']} on Node.js {r['portkey']['node']}." if r.get("portkey") else ""), ""]
    tp = r["throughput"]
    med = lambda runs, f: median([f(x) for x in runs])  # noqa: E731

    def throughput_table(title: str, section: dict) -> list[str]:
        d_rps = med(section["direct"], lambda x: x["requests_per_s"])
        rows = ["", title, "", "| target | requests/s | events/s | vs direct | CPU per request (target process) | lost/failed |",
                "|---|---|---|---|---|---|"]
        for name, runs in section.items():
            rps = med(runs, lambda x: x["requests_per_s"])
            cpu = med(runs, lambda x: x["cpu_us_per_request"] or 0)
            bad = sum(x["lost"] + x["failures"] + x["http_errors"] for x in runs)
            rows.append(f"| {name} | {rps:,.0f} | {med(runs, lambda x: x['events_per_s']):,.0f} | {rps / d_rps:.1%} | "
                        f"{cpu:.1f} µs{' (the mock)' if name == 'direct' else ''} | {bad} |")
        return rows

    if tp:
        out += throughput_table("### Throughput: 20-event stream back to back, 64 concurrent streams", tp)
    for peer, short in peers:
        if peer not in tp:
            continue
        ratio = med(tp[ours], lambda x: x["requests_per_s"]) / med(tp[peer], lambda x: x["requests_per_s"])
        cpu_ratio = med(tp[peer], lambda x: x["cpu_us_per_request"]) / max(med(tp[ours], lambda x: x["cpu_us_per_request"]), 1e-9)
        out += ["", f"{ours}: {ratio:.1f}× {short}'s requests/s, {cpu_ratio:.0f}× less CPU per request."]
    if r.get("instructions"):
        out += ["", f"Instructions per fast-stream request in the proxy (callgrind, one runtime thread, 8 concurrent "
                    f"streams): {r['instructions']:,.0f}"
                    + (f"; without the layers: {r['instructions_without_layers']:,.0f}" if r.get("instructions_without_layers") else "")
                    + "."]
    if r.get("dedicated"):
        out += throughput_table("### Throughput, a core each: load generator and mock on core 0, the target on core 1",
                                r["dedicated"])
    for c, per in r["latency"].items():
        out += ["", f"### Latency: 20 events 50 ms apart, {c} concurrent stream{'s' if c != '1' else ''}", "",
                "| target | first event p50 | p99 | end to end p50 | p99 | added first-event p50 | added p99 | requests/s (vs direct) | CPU per request | lost/failed |",
                "|---|---|---|---|---|---|---|---|---|---|"]
        dp50 = med(per["direct"], lambda x: x["ttfe_us"]["p50"])
        drps = med(per["direct"], lambda x: x["requests_per_s"])
        dp99 = med(per["direct"], lambda x: x["ttfe_us"]["p99"])
        for name, runs in per.items():
            p50 = med(runs, lambda x: x["ttfe_us"]["p50"])
            p99 = med(runs, lambda x: x["ttfe_us"]["p99"])
            e50 = med(runs, lambda x: x["total_us"]["p50"])
            e99 = med(runs, lambda x: x["total_us"]["p99"])
            bad = sum(x["lost"] + x["failures"] + x["http_errors"] for x in runs)
            added = "- | -" if name == "direct" else f"{p50 - dp50:,.0f} µs | {p99 - dp99:,.0f} µs"
            cpu = f"{med(runs, lambda x: x['cpu_us_per_request'] or 0):.0f} µs" + (" (the mock)" if name == "direct" else "")
            rps = med(runs, lambda x: x["requests_per_s"])
            out.append(f"| {name} | {p50 / 1000:.2f} ms | {p99 / 1000:.2f} ms | {e50 / 1000:.1f} ms | {e99 / 1000:.1f} ms | {added} | "
                       f"{rps:,.0f} ({rps / drps:.1%}) | {cpu} | {bad} |")
    if r.get("nginx"):
        n_direct = med(r["nginx"]["direct (nginx)"], lambda x: x["requests_per_s"])
        out += ["", f"### nginx/wrk: nginx serving the {r['nginx_stream_bytes']:,}-byte stream, wrk -t1 -c64, alternating",
                "", "| target | requests/s | vs direct | CPU per request (target process) | non-2xx |", "|---|---|---|---|---|"]
        for name, runs in r["nginx"].items():
            rps = med(runs, lambda x: x["requests_per_s"])
            cpu = "-" if name.startswith("direct") else f"{med(runs, lambda x: x['cpu_us_per_request']):.1f} µs"
            out.append(f"| {name} | {rps:,.0f} | {rps / n_direct:.1%} | {cpu} | {sum(x['non_2xx'] for x in runs)} |")
    out += [] if not r["idle"] else ["", "### Idle streams held open", "", "| target | streams held | baseline RSS | peak RSS | per stream |", "|---|---|---|---|---|"]
    for name, runs in r["idle"].items():
        out.append(f"| {name} | {med(runs, lambda x: x['held']):,.0f} | {med(runs, lambda x: x['baseline_rss']) / 2**20:.1f} MiB | "
                   f"{med(runs, lambda x: x['peak_rss']) / 2**20:.1f} MiB | {med(runs, lambda x: x['per_stream_bytes']) / 1024:.1f} KiB |")
    return "\n".join(out)


if __name__ == "__main__":
    main()
