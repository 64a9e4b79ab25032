#!/usr/bin/env node
// Read the proxy's OpenAI Responses API (/v1/responses) and text completions (/v1/completions)
// with the official TypeScript SDK (openai) and check them against the OpenAI chat view of the
// same model through the same proxy. The same checks as responses_check.py; see usage below.
// Tested with openai 6.49.0.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { TOOL, chatSummary, chatViews, jsonEqual, loadSdk, parseArgs, parseArguments, run, short } from './common.mjs';

const USAGE = `usage: node responses_check.mjs BASE_URL --model M [--tests responses,responses_create,completions,error]
       [--max-tokens N] [--error-model M] [--api-key K] [--prompt P] [--tool] [--timeout S] [--quiet]
  responses         client.responses.stream(): finalResponse()'s output_text, reasoning summary, function_call
                    items, status (length: incomplete/max_output_tokens, content_filter: incomplete/content_filter,
                    else completed) and usage == the chat view's; the raw events: response.created first,
                    sequence_number 0, 1, 2, … without a gap, one terminal event, last, with response.created's id
  responses_create  non-streaming responses.create() agrees with the stream: text, status, reasoning, calls, usage
  completions       completions.create({stream: true}): text, finish_reason, last chunk's usage == the chat view's
  error             --error-model (default demo/broken) fails mid-stream: Responses raises the SDK's APIError (or
                    sends an error event then response.failed), completions raises its APIError, after partial text
openai from \${ORACLES_HOME:-~/.cache/sse-oracles}/node_modules, else \${CLIENT_SDKS:-~/.cache/client-sdks}/node_modules or NODE_PATH.`;

const a = parseArgs(process.argv, { tests: 'responses,responses_create,completions,error', usage: USAGE });

// openai from $ORACLES_HOME/node_modules (where the oracles' setup installs it), else as the other SDKs.
function loadOpenAI() {
  const home = process.env.ORACLES_HOME || join(homedir(), '.cache', 'sse-oracles');
  try {
    const require = createRequire(join(home, 'package.json'));
    const sdk = require('openai');
    let version = '?';
    try { version = JSON.parse(readFileSync(join(home, 'node_modules', 'openai', 'package.json'), 'utf8')).version; } catch { /* unknown */ }
    return { sdk, version };
  } catch {
    return loadSdk('openai');
  }
}
const { sdk, version } = loadOpenAI();
const OpenAI = sdk.OpenAI ?? sdk.default;
if (!a.quiet) console.log(`openai ${version}`);

const TERMINAL = ['response.completed', 'response.incomplete', 'response.failed'];
const LIFECYCLE = ['response.created', 'response.queued', 'response.in_progress', ...TERMINAL];

const client = () => new OpenAI({ baseURL: `${a.baseUrl}/v1`, apiKey: a.apiKey, timeout: a.timeout * 1000, maxRetries: 0 });

// The Responses request: the prompt as one user message, --max-tokens, --tool.
function params(model) {
  const p = { model, input: [{ role: 'user', content: a.prompt }], max_output_tokens: a.maxTokens };
  if (a.tool) p.tools = [{ type: 'function', name: TOOL.name, description: TOOL.description, parameters: TOOL.schema, strict: false }];
  return p;
}

// The Responses status and incomplete_details.reason a chat finish_reason stands for.
function wantStatus(finish) {
  if (finish === 'length') return ['incomplete', 'max_output_tokens'];
  if (finish === 'content_filter') return ['incomplete', 'content_filter'];
  return ['completed', null];
}

const usageOf = (u) => (u == null ? null : { input_tokens: u.input_tokens, output_tokens: u.output_tokens, total_tokens: u.total_tokens });

// What a Response says: text (output_text, and refusal parts), reasoning summary text, function
// calls, status, incomplete reason, usage, output item types.
function itemsOf(r) {
  const output = r.output ?? [];
  const messages = output.filter((i) => i.type === 'message');
  const refusal = messages.flatMap((i) => i.content ?? []).filter((c) => c.type === 'refusal').map((c) => c.refusal ?? '').join('');
  const outputText = r.output_text ?? messages.flatMap((i) => i.content ?? []).filter((c) => c.type === 'output_text').map((c) => c.text).join('');
  return {
    text: outputText + refusal,
    reasoning: output.filter((i) => i.type === 'reasoning').flatMap((i) => i.summary ?? []).map((s) => s.text).join(''),
    calls: output.filter((i) => i.type === 'function_call').map((i) => ({ name: i.name, arguments: parseArguments(i.arguments) })),
    status: r.status,
    reason: r.incomplete_details?.reason ?? null,
    usage: usageOf(r.usage),
    types: output.map((i) => i.type),
  };
}

const chat = chatViews(a);

function compareWithChat(t, got, cv) {
  t.need(cv.error === null, `the chat view failed: ${JSON.stringify(cv.error)}`);
  t.need(got.text === cv.text, `output_text ${short(got.text)} != chat view's ${short(cv.text)}`);
  t.need(got.reasoning === cv.reasoning, `reasoning summary ${short(got.reasoning)} != chat view's reasoning_content ${short(cv.reasoning)}`);
  t.need(jsonEqual(got.calls, cv.toolCalls), `function_call items ${short(got.calls, 300)} != chat view's tool calls ${short(cv.toolCalls, 300)}`);
  const [status, reason] = wantStatus(cv.finishReason);
  t.need(got.status === status && got.reason === reason,
    `status ${got.status} (incomplete_details.reason ${got.reason}) but the chat view's finish_reason ${cv.finishReason} means ${status} (${reason})`);
  const u = got.usage;
  const cu = cv.usage;
  if (cu === null) {
    t.say("the chat view has no usage: the response's usage must be null");
    t.need(u === null, `usage ${JSON.stringify(u)} invented: the chat view has none`);
  } else if (t.need(u !== null, `no usage, the chat view has ${JSON.stringify(cu)}`)) {
    for (const [mine, theirs] of [['input_tokens', 'prompt_tokens'], ['output_tokens', 'completion_tokens'], ['total_tokens', 'total_tokens']]) {
      t.need(u[mine] === cu[theirs], `usage.${mine} ${u[mine]} != chat view's ${theirs} ${cu[theirs]}`);
    }
  }
}

// One client.responses.stream() run, read once for `responses` and `responses_create`.
let streamed = null;
async function readStream() {
  if (streamed) return streamed;
  const s = { raw: [], text: '', reasoning: '', deltas: 0, final: null, error: null };
  try {
    const stream = client().responses.stream(params(a.model));
    // Every raw event, as the SDK parsed it, before its accumulator.
    for await (const ev of stream) {
      s.raw.push(ev);
      if (ev.type === 'response.output_text.delta') { s.text += ev.delta; s.deltas++; }
      else if (ev.type === 'response.refusal.delta') s.text += ev.delta;
      else if (ev.type === 'response.reasoning_summary_text.delta') s.reasoning += ev.delta;
    }
    s.final = await stream.finalResponse();
  } catch (e) {
    s.error = e;
    if (!a.quiet) console.log(e?.stack ?? e);
  }
  streamed = s;
  return s;
}

function checkEvents(t, raw) {
  const types = raw.map((e) => e.type);
  t.need(types[0] === 'response.created', `the first event is ${types[0]}, not response.created`);
  const seqs = raw.map((e) => e.sequence_number);
  if (!t.need(seqs.every((n, i) => n === i), `sequence_number is not 0, 1, 2, … without a gap: ${short(seqs, 200)}`)) {
    t.say(`event types: ${types.join(',')}`);
  }
  const terminals = types.map((x, i) => [x, i]).filter(([x]) => TERMINAL.includes(x));
  t.need(terminals.length === 1, `${terminals.length} terminal events (${terminals.map(([x]) => x)}), not 1`);
  t.need(terminals.length > 0 && terminals.at(-1)[1] === types.length - 1, `the last event is ${types.at(-1)}, not a terminal one`);
  const ids = new Set(raw.filter((e) => LIFECYCLE.includes(e.type)).map((e) => e.response?.id));
  t.need(ids.size === 1, `the lifecycle events carry response ids ${[...ids]}, not one`);
}

const errName = (e) => e?.constructor?.name ?? typeof e;

// Checks an error is the SDK's APIError after partial text; returns what happened.
function errorReport(t, err, text, what) {
  const name = errName(err);
  t.say(`${what}: error ${name}: ${err?.message}`);
  t.say(`${what}: partial text ${short(text, 200)}`);
  if (!(err instanceof sdk.APIError) || err instanceof sdk.APIConnectionError) t.say(err?.stack ?? String(err));
  t.need(err instanceof sdk.APIError, `${what}: ${name} is not an OpenAI APIError`);
  t.need(!(err instanceof sdk.APIConnectionError), `${what}: ${name}: the connection failed, no error event was read`);
  t.need(text !== '', `${what}: the error came before any text`);
  t.say(`${what}: error body ${short(err?.error ?? null, 300)}`);
  return `${what}: ${name} after ${text.length} chars (${err?.code ?? short(err?.message, 80)})`;
}

const tests = {
  async responses(t) {
    const s = await readStream();
    if (!t.need(s.error === null, `the stream threw ${errName(s.error)}: ${s.error?.message}`)) return '';
    const r = s.final;
    const got = itemsOf(r);
    const types = s.raw.map((e) => e.type);
    t.say(`events: ${types.slice(0, 6).join(',')}… (${types.length})`);
    t.say(`final response: ${short(r, 400)}`);
    t.say(`output_text: ${short(got.text, 200)}`);
    if (got.reasoning) t.say(`reasoning summary: ${short(got.reasoning, 200)}`);
    checkEvents(t, s.raw);
    const terminal = types.filter((x) => TERMINAL.includes(x)).at(-1);
    t.need(terminal === `response.${got.status}`, `status ${got.status} but the stream ended with ${terminal}`);
    t.need(s.text === got.text, `the text deltas ${short(s.text)} != output_text ${short(got.text)}`);
    t.need(s.reasoning === got.reasoning, `the reasoning summary deltas ${short(s.reasoning)} != the summary text ${short(got.reasoning)}`);
    compareWithChat(t, got, await chat(t, a.model));
    return `${r.id}: ${s.deltas} text deltas, ${got.text.length} chars, reasoning ${got.reasoning.length} chars, `
      + `${got.calls.length} function calls, status ${got.status}${got.reason ? ` (${got.reason})` : ''}, usage ${JSON.stringify(got.usage)}`;
  },
  async responses_create(t) {
    let r;
    try {
      r = await client().responses.create(params(a.model));
    } catch (e) {
      if (e instanceof sdk.APIError) throw e;
      // The SDK could not read the body: say what the proxy sent (asked again, read as it came).
      const res = await client().responses.create(params(a.model)).asResponse();
      const body = await res.text();
      t.need(false, `the SDK failed on the body (${errName(e)}: ${short(e?.message, 80)}): HTTP ${res.status}, `
        + `content-type ${res.headers.get('content-type')}: ${short(body, 200)}`);
      return '';
    }
    if (!t.need(r && typeof r === 'object' && Array.isArray(r.output), `the SDK read ${short(r, 200)}, not a Response`)) return '';
    t.say(`response: ${short(r, 400)}`);
    t.need(r.object === 'response', `object ${r.object}`);
    const got = itemsOf(r);
    const s = await readStream();
    if (!t.need(s.error === null, `the stream threw ${errName(s.error)}: ${s.error?.message}`)) return '';
    const st = itemsOf(s.final);
    t.need(got.text === st.text, `output_text ${short(got.text)} != streamed ${short(st.text)}`);
    t.need(got.status === st.status && got.reason === st.reason, `status ${got.status} (${got.reason}) != streamed ${st.status} (${st.reason})`);
    t.need(got.reasoning === st.reasoning, `reasoning summary ${short(got.reasoning)} != streamed ${short(st.reasoning)}`);
    t.need(jsonEqual(got.calls, st.calls), `function calls ${short(got.calls, 300)} != streamed ${short(st.calls, 300)}`);
    t.need(jsonEqual(got.usage, st.usage), `usage ${JSON.stringify(got.usage)} != streamed ${JSON.stringify(st.usage)}`);
    return `${r.id}: ${got.text.length} chars, ${got.types}, status ${got.status}${got.reason ? ` (${got.reason})` : ''}, usage ${JSON.stringify(got.usage)}`;
  },
  async completions(t) {
    let text = '';
    let finish = null;
    let usage = null;
    let chunks = 0;
    const usageAt = [];
    const stream = await client().completions.create({ model: a.model, prompt: a.prompt, max_tokens: a.maxTokens, stream: true,
      stream_options: { include_usage: true } });
    for await (const chunk of stream) {
      chunks++;
      usage = chunk.usage ?? null;
      if (usage) usageAt.push(chunks - 1);
      for (const choice of chunk.choices ?? []) {
        if ((choice.index ?? 0) !== 0) continue;
        text += choice.text ?? '';
        if (choice.finish_reason) finish = choice.finish_reason;
      }
    }
    const cv = await chat(t, a.model, false);
    t.say(`text: ${short(text, 200)}`);
    t.need(cv.error === null, `the chat view failed: ${JSON.stringify(cv.error)}`);
    t.need(text === cv.text, `text ${short(text)} != chat view's ${short(cv.text)}`);
    t.need(finish === cv.finishReason, `finish_reason ${finish} != chat view's ${cv.finishReason}`);
    if (cv.usage === null) {
      t.need(usageAt.length === 0, `usage in chunks ${usageAt} invented: the chat view has none`);
    } else if (t.need(usage !== null, `the last chunk has no usage (usage in chunks ${usageAt} of ${chunks}), the chat view has ${JSON.stringify(cv.usage)}`)) {
      for (const k of ['prompt_tokens', 'completion_tokens', 'total_tokens']) {
        t.need(usage[k] === cv.usage[k], `usage.${k} ${usage[k]} != chat view's ${cv.usage[k]}`);
      }
    }
    const counts = usage ? `${usage.prompt_tokens}/${usage.completion_tokens}/${usage.total_tokens}` : 'none';
    return `${chunks} chunks, ${text.length} chars, finish_reason ${finish}, usage ${counts}`;
  },
  async error(t) {
    const cv = await chat(t, a.errorModel);
    t.need(cv.error !== null, `the chat view of ${a.errorModel} did not fail (${chatSummary(cv)})`);
    const code = cv.error?.code ?? null;
    const parts = [];
    // Responses: the SDK's APIError, or an `error` event then response.failed.
    let text = '';
    let err = null;
    let failed = null;
    const types = [];
    try {
      const stream = client().responses.stream(params(a.errorModel));
      for await (const ev of stream) {
        types.push(ev.type);
        if (ev.type === 'response.output_text.delta') text += ev.delta;
        else if (ev.type === 'error') t.say(`responses: error event ${short(ev, 300)}`);
        else if (ev.type === 'response.failed') failed = ev.response;
      }
      await stream.finalResponse();
    } catch (e) {
      err = e;
    }
    t.say(`responses: events ${types.slice(0, 5).join(',')}…${types.slice(-3).join(',')} (${types.length})`);
    if (err !== null) {
      parts.push(errorReport(t, err, text, 'responses'));
      t.need(!code || JSON.stringify(err?.error ?? null).includes(code), `responses: the chat view's error code ${code} is not in the error body ${short(err?.error ?? null, 200)}`);
    } else if (t.need(types.includes('error') && types.at(-1) === 'response.failed' && types.indexOf('error') < types.length - 1,
      `responses: ${a.errorModel} ended without an error and without an \`error\` event then response.failed (events end ${types.slice(-3)}, ${text.length} chars)`)) {
      t.need(text !== '', 'responses: the error came before any text');
      t.say(`responses: response.failed error ${short(failed?.error ?? null, 300)}`);
      parts.push(`responses: error event then response.failed after ${text.length} chars`);
    }
    // Completions: the SDK's APIError.
    let ctext = '';
    let cerr = null;
    try {
      const stream = await client().completions.create({ model: a.errorModel, prompt: a.prompt, max_tokens: a.maxTokens, stream: true,
        stream_options: { include_usage: true } });
      for await (const chunk of stream) {
        for (const choice of chunk.choices ?? []) if ((choice.index ?? 0) === 0) ctext += choice.text ?? '';
      }
    } catch (e) {
      cerr = e;
    }
    if (t.need(cerr !== null, `completions: ${a.errorModel} ended without an error (${ctext.length} chars)`)) {
      parts.push(errorReport(t, cerr, ctext, 'completions'));
      t.need(!code || JSON.stringify(cerr?.error ?? null).includes(code), `completions: the chat view's error code ${code} is not in the error body ${short(cerr?.error ?? null, 200)}`);
    }
    return parts.join('; ');
  },
};

process.exitCode = await run('responses_check.mjs', a, tests);
