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
  background        (not in the default list: needs a proxy started with --resumable, and a deterministic model such
                    as the demo's) responses.create({stream: true, background: true}): 6 events (FIRST_EVENTS), then
                    break out of the loop (the SDK aborts the request: a client disconnect); responses.retrieve(id,
                    {stream: true, starting_after: the last sequence_number}) reads the rest: sequence_number runs on
                    without a gap or a duplicate to one terminal event, the text (and event types) of both parts are
                    those of the same request streamed uninterrupted, not in the background; the id is resp_ + 32 hex
                    digits; responses.retrieve(id): that status, output_text and usage, background true. Then
                    demo/slow (CANCEL_MODEL, hard-coded) in the background: 2 events, responses.cancel(id) answers
                    status cancelled; the stream still open and retrieve(id, {stream: true}) each end with the error
                    event stream_cancelled (the SDK's APIError with that code; a yielded error event is accepted
                    too), no terminal event; retrieve(id) then says cancelled, and a second cancel() too
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

// Background responses.
const CANCEL_MODEL = 'demo/slow'; // the cancel part: a reply long and slow enough to cancel (the demo's)
const FIRST_EVENTS = 6; // events read before the disconnect: on the demo, created, in_progress, the item
//                         and part added, then two text deltas
const CANCEL_EVENTS = 2; // events read before the cancel
const textOf = (events) => events.filter((e) => e.type === 'response.output_text.delta' || e.type === 'response.refusal.delta')
  .map((e) => e.delta).join('');
const seqsOf = (events) => events.map((e) => e.sequence_number);
const isRun = (seqs, from) => seqs.every((n, i) => n === from + i);

// Reads an SDK stream to its end: {events, err} (what it yielded, what it threw).
async function drain(next) {
  const events = [];
  try {
    for (;;) {
      const { value, done } = await next();
      if (done) return { events, err: null };
      events.push(value);
    }
  } catch (e) {
    return { events, err: e };
  }
}

async function background(t) {
  const c = client();
  // The same request, uninterrupted and not in the background: the text to get back.
  const ref = [];
  for await (const ev of await c.responses.create({ ...params(a.model), stream: true })) ref.push(ev);
  const refTypes = ref.map((e) => e.type);
  const refEnd = TERMINAL.includes(refTypes.at(-1)) ? ref.at(-1) : null;
  if (!t.need(refEnd !== null, `the uninterrupted stream ends with ${refTypes.at(-1)}, not a terminal event`)) return '';
  const refText = textOf(ref);
  t.say(`uninterrupted: ${ref.length} events, ${refEnd.type}, text ${short(refText, 80)}`);

  // In the background: FIRST_EVENTS events, then the client goes (the loop's break: the SDK aborts the request).
  const s = await c.responses.create({ ...params(a.model), stream: true, background: true });
  const first = [];
  for await (const ev of s) {
    first.push(ev);
    if (first.length >= FIRST_EVENTS) break;
  }
  t.need(s.controller.signal.aborted, "the SDK did not abort the first stream's request after the break");
  const types = first.map((e) => e.type);
  if (!t.need(types[0] === 'response.created', `the first event is ${types[0]}, not response.created`)) return '';
  const id = first[0].response.id;
  const last = first.at(-1).sequence_number;
  t.say(`background ${id}: read ${types.join(',')}, sequence_number ${seqsOf(first)}, then broke off (aborted)`);
  t.need(/^resp_[0-9a-f]{32}$/.test(id ?? ''), `response.created's id ${id} is not resp_ and 32 hex digits`);
  t.need(isRun(seqsOf(first), 0), `sequence_number ${seqsOf(first)}, not 0, 1, 2, …`);
  t.need(!types.some((x) => TERMINAL.includes(x)), `the reply ended within ${FIRST_EVENTS} events (${types}): nothing left to resume`);

  // The rest, read back after the last sequence_number the client had.
  const rest = [];
  for await (const ev of await c.responses.retrieve(id, { stream: true, starting_after: last })) rest.push(ev);
  const restTypes = rest.map((e) => e.type);
  t.say(`retrieve({stream: true, starting_after: ${last}}): ${rest.length} events, sequence_number `
    + `${seqsOf(rest).slice(0, 3)}…${seqsOf(rest).at(-1)}, last ${restTypes.at(-1)}`);
  t.need(isRun(seqsOf(rest), last + 1),
    `the resumed sequence_number ${short(seqsOf(rest), 200)} does not run on from ${last} without a gap or a duplicate`);
  const both = [...first, ...rest];
  const bothTypes = both.map((e) => e.type);
  const terminals = bothTypes.filter((x) => TERMINAL.includes(x));
  t.need(terminals.length === 1 && TERMINAL.includes(bothTypes.at(-1)),
    `${terminals.length} terminal events (${terminals}), the last event ${bothTypes.at(-1)}: not one terminal, last`);
  t.need(!bothTypes.includes('error'), `an error event: ${short(both.find((e) => e.type === 'error'), 200)}`);
  const ids = new Set(both.filter((e) => LIFECYCLE.includes(e.type)).map((e) => e.response?.id));
  t.need(ids.size === 1 && ids.has(id), `the lifecycle events carry response ids ${[...ids]}, not ${id}`);
  const text = textOf(both);
  t.need(textOf(first) !== '' && textOf(rest) !== '',
    `the text was not split by the disconnect (${textOf(first).length} chars before, ${textOf(rest).length} after)`);
  t.need(text === refText, `the text before and after the disconnect ${short(text)} != the uninterrupted stream's ${short(refText)}`);
  t.need(jsonEqual(bothTypes, refTypes), `the event types ${short(bothTypes, 200)} != the uninterrupted stream's ${short(refTypes, 200)}`);
  const end = TERMINAL.includes(bothTypes.at(-1)) ? both.at(-1) : null;

  // The response, not streamed: final.
  const final = await c.responses.retrieve(id);
  t.say(`retrieve(): ${short(final, 300)}`);
  t.need(final.id === id, `retrieve()'s id ${final.id} != ${id}`);
  const status = end ? end.type.replace(/^response\./, '') : null;
  t.need(final.status === status && status === refEnd.response.status,
    `retrieve()'s status ${final.status}, the stream's terminal event ${end?.type}, the uninterrupted stream's ${refEnd.response.status}`);
  t.need(final.output_text === refText, `retrieve()'s output_text ${short(final.output_text)} != ${short(refText)}`);
  t.need(final.background === true, `retrieve()'s background is ${final.background}, not true`);
  t.need(jsonEqual(usageOf(final.usage), usageOf(refEnd.response.usage)),
    `retrieve()'s usage ${JSON.stringify(usageOf(final.usage))} != the uninterrupted stream's ${JSON.stringify(usageOf(refEnd.response.usage))}`);
  const parts = [`${id}: ${first.length} events, disconnect, ${rest.length} resumed after ${last} (${text.length} chars, ${final.status})`];

  // Cancelled: CANCEL_MODEL in the background, CANCEL_EVENTS events, then cancel() with the stream still open.
  const open = await c.responses.create({ ...params(CANCEL_MODEL), stream: true, background: true });
  const it = open[Symbol.asyncIterator]();
  const had = [];
  while (had.length < CANCEL_EVENTS) {
    const { value, done } = await it.next();
    if (done) break;
    had.push(value);
  }
  const cid = had[0]?.type === 'response.created' ? had[0].response.id : null;
  if (!t.need(cid !== null, `${CANCEL_MODEL}: the first event is ${had[0]?.type}, not response.created`)) {
    await it.return();
    return parts.join('; ');
  }
  const asked = performance.now();
  const cancelled = await c.responses.cancel(cid);
  t.say(`cancel(${cid}): ${short(cancelled, 300)}`);
  t.need(cancelled.id === cid, `cancel()'s id ${cancelled.id} != ${cid}`);
  t.need(cancelled.status === 'cancelled', `cancel()'s status ${cancelled.status}, not cancelled`);
  // The stream that was open, and the stream read again: each ends with the error event
  // stream_cancelled (the SDK throws its APIError: the event's data has an `error` field), no
  // terminal event.
  const openRest = await drain(() => it.next());
  t.say(`the open stream ended ${((performance.now() - asked) / 1000).toFixed(2)} s after cancel() was called`);
  const againStream = await c.responses.retrieve(cid, { stream: true, starting_after: had.at(-1).sequence_number });
  const againIt = againStream[Symbol.asyncIterator]();
  const again = await drain(() => againIt.next());
  for (const [what, events, err] of [['the open stream', [...had, ...openRest.events], openRest.err],
    ['retrieve({stream: true})', [...had, ...again.events], again.err]]) {
    const evTypes = events.map((e) => e.type);
    t.say(`${what}: ${events.length} events, ends ${evTypes.slice(-2)} ${short(events.at(-1), 200)}`
      + (err ? `, threw ${errName(err)}: ${err.message} (code ${err.code}, error ${short(err.error ?? null, 200)})` : ''));
    if (err) {
      t.need(err instanceof sdk.APIError && !(err instanceof sdk.APIConnectionError)
        && JSON.stringify(err.error ?? null).includes('stream_cancelled'),
      `${what} threw ${errName(err)}: ${err?.message} (error ${short(err?.error ?? null, 200)}), not the SDK's APIError for stream_cancelled`);
    } else {
      t.need(evTypes.at(-1) === 'error' && events.at(-1).code === 'stream_cancelled',
        `${what} ends with ${short(events.at(-1), 200)}, not an error event with code stream_cancelled`);
    }
    t.need(isRun(seqsOf(events), 0), `${what}: sequence_number ${short(seqsOf(events), 200)}, not 0, 1, 2, …`);
    t.need(!evTypes.some((x) => TERMINAL.includes(x)), `${what}: a terminal event after the cancel: ${evTypes.slice(-3)}`);
  }
  const gone = await c.responses.retrieve(cid);
  const againText = textOf([...had, ...again.events]);
  t.need(gone.status === 'cancelled', `retrieve() after the cancel: status ${gone.status}, not cancelled`);
  t.need(gone.output_text === againText, `retrieve() after the cancel: output_text ${short(gone.output_text)} != streamed ${short(againText)}`);
  const twice = await c.responses.cancel(cid);
  t.need(twice.status === 'cancelled', `cancel() again: status ${twice.status}, not cancelled`);
  const ending = again.err ? `threw ${errName(again.err)} (${again.err.code})` : `ended with ${again.events.at(-1)?.type} (${again.events.at(-1)?.code})`;
  parts.push(`${cid} (${CANCEL_MODEL}): cancelled after ${CANCEL_EVENTS} events; read again, ${again.events.length} events, `
    + `then the SDK ${ending}; ${gone.output_text.length} chars`);
  return parts.join('; ');
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
  background,
};

process.exitCode = await run('responses_check.mjs', a, tests);
