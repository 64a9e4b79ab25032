// Drives the example proxy's playground page (served at `/`) in headless Debian Chromium
// through playwright-core: a demo reply must stream in incrementally in both modes and end
// with its usage, Stop must abort mid-stream, an error event must be shown, and screenshots
// are saved.
//
//   BROWSER_DEPS=dir/with/node_modules node tests/browser/playground.mjs http://127.0.0.1:8080 OUT_DIR
//
// Exit status 0 when every check passed, 1 otherwise.
import { createRequire } from "node:module";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

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

async function state() {
  return (await page.textContent("#state")) || "";
}

/// Sends the prompt and samples the reply's length until the stream ends.
async function run(model, mode, prompt) {
  await page.selectOption("#model", model);
  await page.check(`input[name=mode][value=${mode}]`);
  await page.fill("#prompt", prompt);
  await page.click("#send");
  const lengths = [];
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const length = ((await page.textContent("#output")) || "").length;
    if (lengths[lengths.length - 1] !== length) lengths.push(length);
    if ((await state()) !== "streaming…") break;
    await page.waitForTimeout(25);
  }
  return lengths;
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
  await page.click("#send");
  await page.waitForFunction(() => document.getElementById("output").textContent.length > 0, null, { timeout: 10_000 });
  await page.click("#stop");
  await page.waitForFunction(() => document.getElementById("state").textContent === "stopped", null, { timeout: 5_000 });
  const atStop = ((await page.textContent("#output")) || "").length;
  await page.waitForTimeout(800);
  const later = ((await page.textContent("#output")) || "").length;
  check(atStop > 0 && later === atStop, `nothing arrives after Stop (${atStop} then ${later} characters)`);
  check(!(await page.isDisabled("#send")) && (await page.isDisabled("#stop")), "Send is enabled again, Stop disabled");

  console.log("- an error event: demo/broken");
  await run("demo/broken", "chat", "Hello");
  const error = (await page.textContent("#error")) || "";
  check((await state()) === "failed", `the stream is marked failed (state: ${await state()})`);
  check(await page.isVisible("#error"), "the error is shown");
  check(error.includes("upstream_body_error") && error.includes("dropped the connection"), `it says what happened ("${error}")`);
  await page.screenshot({ path: join(outDir, "playground-error.png"), fullPage: true });

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
