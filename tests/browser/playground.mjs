// Drives the example proxy's playground page (served at `/`) in headless Debian Chromium
// through playwright-core: a demo reply must stream in incrementally in both modes and end
// with its usage, Stop must abort mid-stream (and cancel the resumable stream at the proxy),
// an error event must be shown, a stream whose connections are cut mid-stream (by a TCP relay
// in front of the proxy) must be resumed by the page with nothing lost or repeated, the page
// must fall back to plain streams on a proxy without --resumable, and screenshots are saved.
//
//   BROWSER_DEPS=dir/with/node_modules node tests/browser/playground.mjs http://127.0.0.1:8080 OUT_DIR
//
// The proxy must run with --resumable.
//
// Exit status 0 when every check passed, 1 otherwise.
import { createRequire } from "node:module";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import net from "node:net";

const require = createRequire(join(process.env.BROWSER_DEPS || process.cwd(), "noop.js"));
const { chromium } = require("playwright-core");

const [base, outDir] = process.argv.slice(2);
if (!base || !outDir) {
  console.error("usage: playground.mjs BASE_URL OUT_DIR");
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });

let failures = 0;
function check(ok, what) {
  console.log(`  [${ok ? "PASS" : "FAIL"}] ${what}`);
  if (!ok) failures += 1;
  return ok;
}

/// A TCP relay on a free local port in front of `target` (a URL), each connection piped to a
/// connection of its own to the target; `cut()` destroys every open connection, as a network
/// that drops them would; new connections are still taken. `rewrite`, when set, maps what
/// new connections send (a string in latin1: the bytes as they are).
function startRelay(target) {
  const { hostname, port } = new URL(target);
  const sockets = new Set();
  const relay = { rewrite: null };
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(port), hostname);
    const rewrite = relay.rewrite;
    if (rewrite) {
      client.on("data", (data) => upstream.write(Buffer.from(rewrite(data.toString("latin1")), "latin1")));
      client.on("end", () => upstream.end());
    } else {
      client.pipe(upstream);
    }
    upstream.pipe(client);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("error", () => {});
      socket.on("close", () => {
        sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
  });
  return new Promise((resolve, reject) => {
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => resolve(Object.assign(relay, {
      url: `http://127.0.0.1:${server.address().port}`,
      cut() {
        const open = sockets.size;
        for (const socket of sockets) socket.destroy();
        return open;
      },
      close() {
        this.cut();
        return new Promise((done) => server.close(done));
      },
    })));
  });
}

/// Reads a resumable stream of the proxy from its start, for at most `ms`: its SSE text.
async function readStream(id, ms) {
  const response = await fetch(`${base}/v1/streams/${id}`, {
    headers: { "last-event-id": "0" }, signal: AbortSignal.timeout(ms),
  });
  if (!response.ok) return `HTTP ${response.status}`;
  return await response.text();
}

const userDataDir = mkdtempSync(join(tmpdir(), "playground-chromium-"));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  viewport: { width: 1000, height: 760 },
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run",
  ],
});
const page = context.pages()[0] || (await context.newPage());
const pageErrors = [];
page.on("pageerror", (e) => pageErrors.push(String(e)));
page.on("console", (m) => { if (m.type() === "error") pageErrors.push(m.text()); });

async function state(on = page) {
  return (await on.textContent("#state")) || "";
}

/// Sends the prompt and samples the reply's length until the stream ends.
async function run(model, mode, prompt, on = page) {
  await on.selectOption("#model", model);
  await on.check(`input[name=mode][value=${mode}]`);
  await on.fill("#prompt", prompt);
  await on.click("#send");
  const lengths = [];
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const length = ((await on.textContent("#output")) || "").length;
    if (lengths[lengths.length - 1] !== length) lengths.push(length);
    if ((await state(on)) !== "streaming…") break;
    await on.waitForTimeout(25);
  }
  return lengths;
}

/// A second tab, its script errors collected; failed loads are expected there (dropped
/// connections, refusals).
async function newTab() {
  const tab = await context.newPage();
  const errors = [];
  tab.on("pageerror", (e) => errors.push(String(e)));
  tab.on("console", (m) => {
    if (m.type() === "error" && !/^Failed to load resource|net::ERR_/.test(m.text())) errors.push(m.text());
  });
  return { tab, errors };
}

try {
  console.log(`playground at ${base}/ in ${(await context.browser()?.version()) || "chromium"}`);
  await page.goto(`${base}/`);
  await page.waitForSelector('#model option[value="demo/echo"]', { state: "attached", timeout: 10_000 });
  const models = await page.$$eval("#model option", (os) => os.map((o) => o.value));
  check(models.includes("demo/slow") && models.includes("demo/broken"), `the model list comes from /v1/models (${models.join(", ")})`);

  for (const mode of ["chat", "responses"]) {
    console.log(`- ${mode}: demo/echo`);
    const lengths = await run("demo/echo", mode, "Hello from the browser");
    const text = (await page.textContent("#output")) || "";
    const stats = (await page.textContent("#stats")) || "";
    check((await state()) === "done", `the stream ended normally (state: ${await state()})`);
    check(text.includes("You said: \u201cHello from the browser\u201d"), `the reply arrived (${text.slice(0, 80)}…)`);
    const growing = lengths.filter((n) => n > 0 && n < text.length);
    check(growing.length >= 5, `the text appeared incrementally: ${growing.length} partial lengths seen (${lengths.slice(0, 12).join(", ")}…)`);
    check(/usage: \d+ in \+ \d+ out = \d+ tokens/.test(stats), `the usage from the final event is shown ("${stats}")`);
    check(/first token after \d+ ms/.test(stats) && /tokens\/s/.test(stats), "time to first token and tokens/s are shown");
    check(await page.isHidden("#error"), "no error shown");
    if (mode === "chat") await page.screenshot({ path: join(outDir, "playground.png"), fullPage: true });
  }

  console.log("- Stop mid-stream: demo/slow");
  await page.selectOption("#model", "demo/slow");
  await page.check("input[name=mode][value=chat]");
  const posted = page.waitForResponse((r) => r.url().endsWith("/v1/chat/completions"), { timeout: 10_000 });
  await page.click("#send");
  const stopId = (await posted).headers()["x-stream-id"] || "";
  check(/^[0-9a-f]{32}$/.test(stopId), `the page asked for a resumable stream (x-stream-id: ${stopId})`);
  await page.waitForFunction(() => document.getElementById("output").textContent.length > 0, null, { timeout: 10_000 });
  const deleted = page.waitForResponse(
    (r) => r.request().method() === "DELETE" && r.url().endsWith(`/v1/streams/${stopId}`), { timeout: 5_000 },
  ).catch(() => null);
  await page.click("#stop");
  await page.waitForFunction(() => document.getElementById("state").textContent === "stopped", null, { timeout: 5_000 });
  const atStop = ((await page.textContent("#output")) || "").length;
  await page.waitForTimeout(800);
  const later = ((await page.textContent("#output")) || "").length;
  check(atStop > 0 && later === atStop, `nothing arrives after Stop (${atStop} then ${later} characters)`);
  check(!(await page.isDisabled("#send")) && (await page.isDisabled("#stop")), "Send is enabled again, Stop disabled");
  const cancelled = await deleted;
  check(cancelled !== null && cancelled.status() === 200, `Stop sent DELETE /v1/streams/{id} (${cancelled ? cancelled.status() : "no such request"})`);
  // Read back at the proxy: the stream was stopped there, not run on to its end.
  const stored = await readStream(stopId, 5_000).catch((e) => String(e));
  check(stored.includes('"code":"stream_cancelled"') && !stored.includes("[DONE]"),
    `the proxy stopped the stream: it ends with stream_cancelled (${stored.trim().split("\n").pop().slice(0, 120)})`);

  console.log("- an error event: demo/broken");
  await run("demo/broken", "chat", "Hello");
  const error = (await page.textContent("#error")) || "";
  check((await state()) === "failed", `the stream is marked failed (state: ${await state()})`);
  check(await page.isVisible("#error"), "the error is shown");
  check(error.includes("upstream_body_error") && error.includes("dropped the connection"), `it says what happened ("${error}")`);
  await page.screenshot({ path: join(outDir, "playground-error.png"), fullPage: true });

  console.log("- Reconnect: demo/slow through a TCP relay whose connections are cut twice mid-stream");
  const prompt = "Resume this stream";
  await run("demo/instant", "chat", prompt);
  const whole = (await page.textContent("#output")) || "";
  check((await state()) === "done" && whole.includes(`You said: \u201c${prompt}\u201d`),
    `the same prompt uninterrupted (demo/instant: the same words at once): ${whole.length} characters`);
  const relay = await startRelay(base);
  const { tab, errors: tabErrors } = await newTab();
  const resumes = [];
  tab.on("request", (r) => {
    if (r.method() === "GET" && r.url().includes("/v1/streams/")) resumes.push({ url: r.url(), last: r.headers()["last-event-id"] });
  });
  try {
    await tab.goto(`${relay.url}/`);
    await tab.waitForSelector('#model option[value="demo/slow"]', { state: "attached", timeout: 10_000 });
    await tab.selectOption("#model", "demo/slow");
    await tab.check("input[name=mode][value=chat]");
    await tab.fill("#prompt", prompt);
    const started = tab.waitForResponse((r) => r.url().endsWith("/v1/chat/completions"), { timeout: 10_000 });
    await tab.click("#send");
    const id = (await started).headers()["x-stream-id"] || "";
    check(/^[0-9a-f]{32}$/.test(id), `the stream is resumable (x-stream-id: ${id})`);
    // Samples the page until `ok`, keeping every text and status it showed.
    const texts = [], notes = [];
    const until = async (what, ok, ms) => {
      const deadline = Date.now() + ms;
      for (;;) {
        // One snapshot of the three, read in the page at once: read one by one, the page may
        // change between the reads (a state of "failed" with the status it cleared together).
        const now = await tab.evaluate(() => {
          const text = (selector) => document.querySelector(selector).textContent || "";
          return { text: text("#output"), note: text("#resume"), state: text("#state") };
        });
        texts.push(now.text);
        if (now.note && notes[notes.length - 1] !== now.note) notes.push(now.note);
        if (ok(now)) return now;
        if (Date.now() > deadline) {
          throw new Error(`no ${what} within ${ms} ms (${now.text.length} characters, "${now.note}", ${now.state})`);
        }
        await tab.waitForTimeout(40);
      }
    };
    let shown = 0;
    for (const round of [1, 2]) {
      shown = (await until("more text", (now) => now.text.length >= shown + 20, 10_000)).text.length;
      const open = relay.cut();
      check(open > 0, `cut ${round}: ${open} open sockets of the relay destroyed, ${shown} characters shown`);
      await until("reconnecting status", (now) => now.note.includes("reconnecting"), 5_000);
      await until("resumed status", (now) => now.note.startsWith("resumed"), 10_000);
    }
    const end = await until("end of the stream", (now) => now.state !== "streaming…", 40_000);
    check(end.state === "done", `the stream ended normally (state: ${end.state})`);
    check(end.text === whole, `the text equals the uninterrupted one (${end.text.length} and ${whole.length} characters)`);
    const astray = texts.filter((t) => !whole.startsWith(t));
    check(astray.length === 0, `every text shown on the way was a beginning of it: nothing repeated or missed (${texts.length} samples${astray.length ? `, not: "…${astray[0].slice(-60)}"` : ""})`);
    check(notes.some((n) => n.includes("reconnecting")) && /^resumed .*2 reconnections/.test(end.note),
      `the status showed it: ${notes.join(" → ")}`);
    const lasts = resumes.map((r) => Number(r.last));
    check(resumes.length === 2 && resumes.every((r) => r.url.endsWith(`/v1/streams/${id}`)) && lasts[0] > 0 && lasts[1] > lasts[0],
      `it resumed with GET /v1/streams/{id} after the last event it had (Last-Event-ID: ${resumes.map((r) => r.last).join(", ")})`);
    check(/usage: \d+ in \+ \d+ out = \d+ tokens/.test((await tab.textContent("#stats")) || ""), "the usage from the final event is shown");
    check(await tab.isHidden("#error"), "no error shown");
    await tab.screenshot({ path: join(outDir, "playground-reconnect.png"), fullPage: true });

    console.log("- a stream that cannot be resumed: demo/echo, its resume sent (by the relay) for an unknown stream");
    await tab.selectOption("#model", "demo/echo");
    await tab.click("#send");
    await until("text", (now) => now.text.length > 0 && now.state === "streaming…", 10_000);
    relay.rewrite = (bytes) => bytes.replace(/\/v1\/streams\/[0-9a-f]{32}/, `/v1/streams/${"0".repeat(32)}`);
    check(relay.cut() > 0, "the connections were cut mid-stream");
    const lost = await until("end of the stream", (now) => now.state !== "streaming…", 10_000);
    const refusal = (await tab.textContent("#error")) || "";
    check(lost.state === "failed" && (await tab.isVisible("#error")) && refusal.includes("could not be resumed") && refusal.includes("stream_not_found"),
      `the 404 is shown as an error (state: ${lost.state}, "${refusal}")`);
    check(lost.note === "", `no reconnecting status left (${lost.note})`);
    check(tabErrors.length === 0, `no script errors in the page (${tabErrors.join(" | ")})`);
  } finally {
    relay.rewrite = null;
    await tab.close();
    await relay.close();
  }

  console.log("- a proxy without --resumable: the page streams plainly, and asks once");
  const { tab: plain, errors: plainErrors } = await newTab();
  const asked = [];
  await plain.route("**/v1/chat/completions", (route) => {
    const resumable = route.request().headers()["x-resumable"] || "";
    asked.push(resumable || "-");
    if (!resumable) return route.continue();
    // What a proxy started without --resumable answers.
    return route.fulfill({
      status: 400, contentType: "application/json",
      body: JSON.stringify({ error: { type: "invalid_request_error", code: "resumable_disabled", message: "resumable streams are off" } }),
    });
  });
  try {
    await plain.goto(`${base}/`);
    await plain.waitForSelector('#model option[value="demo/echo"]', { state: "attached", timeout: 10_000 });
    for (const round of [1, 2]) {
      await run("demo/echo", "chat", "Hello from the browser", plain);
      const text = (await plain.textContent("#output")) || "";
      check((await state(plain)) === "done" && text.includes("You said: \u201cHello from the browser\u201d") && (await plain.isHidden("#error")),
        `stream ${round} arrived whole (state: ${await state(plain)})`);
    }
    check(asked.join(" ") === "1 - -", `only the first request asked for a resumable stream (x-resumable: ${asked.join(" ")})`);
    check(plainErrors.length === 0, `no script errors in the page (${plainErrors.join(" | ")})`);
  } finally {
    await plain.close();
  }

  check(pageErrors.length === 0, `no script errors in the page (${pageErrors.join(" | ")})`);
} catch (e) {
  check(false, `the page could be driven: ${e.stack || e}`);
  await page.screenshot({ path: join(outDir, "playground-failure.png"), fullPage: true }).catch(() => {});
} finally {
  await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}
console.log(failures ? `FAILED (${failures} failures)` : "ok (0 failures)");
process.exit(failures ? 1 : 0);
