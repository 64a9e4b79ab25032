// Shared by anthropic_check.mjs, genai_check.mjs and responses_check.mjs: finding the SDKs, the
// arguments, the OpenAI chat view of a model through the proxy (plain fetch + an SSE parser, each
// model's read once), and the test runner. Each script holds only its own tests.
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

// An SDK from ${CLIENT_SDKS:-~/.cache/client-sdks}/node_modules (tests/clients/setup.sh), else
// from NODE_PATH (a bare require honours it).
export function loadSdk(name) {
  const dir = process.env.CLIENT_SDKS || join(homedir(), '.cache', 'client-sdks');
  const tries = [];
  if (existsSync(join(dir, 'node_modules'))) tries.push(createRequire(join(dir, 'package.json')));
  tries.push(createRequire(import.meta.url));
  let last;
  for (const require of tries) {
    try {
      const sdk = require(name);
      const version = (() => {
        try {
          const entry = require.resolve(name);
          const at = entry.lastIndexOf(join('node_modules', name));
          return JSON.parse(readFileSync(join(entry.slice(0, at), 'node_modules', name, 'package.json'), 'utf8')).version;
        } catch { return '?'; }
      })();
      return { sdk, version };
    } catch (e) {
      last = e;
    }
  }
  console.error(`cannot load ${name}: run tests/clients/setup.sh, or set CLIENT_SDKS or NODE_PATH (${last?.message})`);
  process.exit(2);
}

export function parseArgs(argv, defaults) {
  const a = { ...defaults, apiKey: process.env.PROXY_API_KEY || 'sk-ci', maxTokens: 256, errorModel: 'demo/broken',
    prompt: 'Say hello in one short sentence.', tool: false, timeout: 60, quiet: false };
  const rest = argv.slice(2);
  const value = (i) => {
    if (i + 1 >= rest.length) usage(`${rest[i]} needs a value`);
    return rest[i + 1];
  };
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i];
    if (arg === '--model') a.model = value(i++);
    else if (arg === '--tests') a.tests = value(i++);
    else if (arg === '--max-tokens') a.maxTokens = Number(value(i++));
    else if (arg === '--error-model') a.errorModel = value(i++);
    else if (arg === '--api-key') a.apiKey = value(i++);
    else if (arg === '--prompt') a.prompt = value(i++);
    else if (arg === '--timeout') a.timeout = Number(value(i++));
    else if (arg === '--tool') a.tool = true;
    else if (arg === '--quiet') a.quiet = true;
    else if (arg === '-h' || arg === '--help') usage();
    else if (arg.startsWith('--')) usage(`unknown option ${arg}`);
    else if (!a.baseUrl) a.baseUrl = arg.replace(/\/+$/, '');
    else usage(`unexpected argument ${arg}`);
  }
  if (!a.baseUrl || !a.model) usage('BASE_URL and --model are needed');
  function usage(problem) {
    if (problem) console.error(problem);
    console.error(defaults.usage);
    process.exit(2);
  }
  return a;
}

// A tool both APIs declare with --tool.
export const TOOL = {
  name: 'get_weather',
  description: 'The current weather in a city.',
  schema: { type: 'object', properties: { city: { type: 'string', description: 'The city, e.g. Paris' } }, required: ['city'] },
};

// Server-sent events of a fetch body, per the WHATWG rules (CR, LF and CRLF line ends, data lines
// joined by LF, a leading BOM dropped): yields {event, data}.
export async function* sseEvents(body) {
  const decoder = new TextDecoder();
  let buf = '';
  let first = true;
  let event = '';
  let data = [];
  let pendingCr = false;
  const lines = function* (text, final) {
    buf += text;
    let at = 0;
    for (let i = 0; i < buf.length; i++) {
      const c = buf[i];
      if (c === '\n' && pendingCr) { pendingCr = false; at = i + 1; continue; }
      pendingCr = false;
      if (c === '\r' || c === '\n') {
        yield buf.slice(at, i);
        if (c === '\r') pendingCr = true;
        at = i + 1;
      }
    }
    buf = buf.slice(at);
    if (final && buf) { yield buf; buf = ''; }
  };
  const take = (line) => {
    if (line === '') {
      const out = data.length ? { event: event || 'message', data: data.join('\n') } : null;
      event = ''; data = [];
      return out;
    }
    if (line.startsWith(':')) return null;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
    return null;
  };
  for await (const chunk of body) {
    let text = decoder.decode(chunk, { stream: true });
    if (first && text.length) { if (text[0] === '\uFEFF') text = text.slice(1); first = false; }
    for (const line of lines(text, false)) { const ev = take(line); if (ev) yield ev; }
  }
  for (const line of lines(decoder.decode(), true)) { const ev = take(line); if (ev) yield ev; }
}

// Tool arguments as JSON values (a string is parsed; unparsable text stays a string).
export function parseArguments(raw) {
  if (typeof raw !== 'string') return raw ?? {};
  if (!raw.trim()) return {};
  try { return JSON.parse(raw); } catch { return raw; }
}

// The chat view: `model` streamed through /v1/chat/completions, read with fetch (choice 0; an
// OpenAI refusal counts as text: the other APIs have no refusal text of their own).
// {text, reasoning, toolCalls [{name, arguments}], finishReason, usage|null, error|null, chunks}
export async function chatView(a, model) {
  const body = { model, messages: [{ role: 'user', content: a.prompt }], max_tokens: a.maxTokens, stream: true,
    stream_options: { include_usage: true } };
  if (a.tool) body.tools = [{ type: 'function', function: { name: TOOL.name, description: TOOL.description, parameters: TOOL.schema } }];
  const view = { text: '', reasoning: '', toolCalls: [], finishReason: null, usage: null, error: null, chunks: 0 };
  const calls = new Map();
  const res = await fetch(`${a.baseUrl}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${a.apiKey}` },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(a.timeout * 1000),
  });
  if (!res.ok) {
    view.error = { type: `HTTP ${res.status}`, message: await res.text(), code: null };
    return view;
  }
  try {
    for await (const ev of sseEvents(res.body)) {
      if (ev.data === '[DONE]') break;
      const chunk = JSON.parse(ev.data);
      if (chunk.error) {
        view.error = { type: chunk.error.type ?? 'error', message: chunk.error.message, code: chunk.error.code ?? null };
        break;
      }
      view.chunks++;
      if (chunk.usage) view.usage = chunk.usage;
      for (const choice of chunk.choices ?? []) {
        if ((choice.index ?? 0) !== 0) continue; // n=1 was asked for: a stray choice is not the reply
        const d = choice.delta ?? {};
        // An OpenAI refusal (delta.refusal) is the reply's text in the other APIs.
        view.text += (d.content ?? '') + (d.refusal ?? '');
        const reasoning = d.reasoning_content ?? d.reasoning;
        if (typeof reasoning === 'string') view.reasoning += reasoning;
        for (const tc of d.tool_calls ?? []) {
          const call = calls.get(tc.index) ?? { name: '', arguments: '' };
          call.name += tc.function?.name ?? '';
          call.arguments += tc.function?.arguments ?? '';
          calls.set(tc.index, call);
        }
        if (choice.finish_reason) view.finishReason = choice.finish_reason;
      }
    }
  } catch (e) {
    view.error = { type: e.name, message: e.message, code: null };
  }
  view.toolCalls = [...calls.entries()].sort(([x], [y]) => x - y).map(([, c]) => ({ name: c.name, arguments: parseArguments(c.arguments) }));
  return view;
}

// chat(t, model, tool = a.tool): the chat view of `model` (with --tool's tool unless `tool` says
// otherwise), read once and said (t.say) when read.
export function chatViews(a) {
  const views = new Map();
  return async (t, model, tool = a.tool) => {
    const key = `${model}\u0000${tool}`;
    if (!views.has(key)) {
      views.set(key, await chatView({ ...a, tool }, model));
      t.say(chatSummary(views.get(key)) + (a.tool && !tool ? ' (no tool)' : ''));
    }
    return views.get(key);
  };
}

export function chatSummary(v) {
  const u = v.usage ? `${v.usage.prompt_tokens}/${v.usage.completion_tokens}/${v.usage.total_tokens}` : 'none';
  return `chat view: ${v.text.length} chars, reasoning ${v.reasoning.length} chars, ${v.toolCalls.length} tool calls, `
    + `finish_reason ${v.finishReason}, usage ${u}` + (v.error ? `, error ${v.error.code || v.error.type}` : '');
}

// JSON equality that ignores key order.
export function canonical(v) {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(',')}}`;
  return JSON.stringify(v ?? null);
}
export const jsonEqual = (x, y) => canonical(x) === canonical(y);

export function short(v, n = 120) {
  const s = typeof v === 'string' ? v : JSON.stringify(v) ?? String(v);
  const cut = s.length > n ? `${s.slice(0, n)}…` : s;
  return typeof v === 'string' ? JSON.stringify(cut) : cut;
}

// Runs the named tests: each gets (t) with t.need(cond, problem) and t.say(line), and returns a
// summary. Prints `ok NAME: ...` / `FAIL NAME: ...` and a closing `N passed, N failed`; returns the exit status.
export async function run(label, a, tests) {
  const names = a.tests.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = names.filter((n) => !tests[n]);
  if (unknown.length) {
    console.error(`unknown tests ${unknown.join(',')}: choose from ${Object.keys(tests).join(',')}`);
    return 2;
  }
  let passed = 0;
  let failed = 0;
  const say = (line) => { if (!a.quiet) console.log(`    ${line}`); };
  for (const name of names) {
    const problems = [];
    const t = {
      say,
      need(cond, problem) { if (!cond) { problems.push(problem); say(`problem: ${problem}`); } return cond; },
    };
    if (!a.quiet) console.log(`--- ${name} (${name === 'error' ? a.errorModel : a.model})`);
    let detail = '';
    try {
      detail = await tests[name](t);
    } catch (e) {
      problems.push(`${e?.constructor?.name ?? 'Error'}: ${e?.message ?? e}`);
      if (!a.quiet) console.log(e?.stack ?? e);
    }
    if (problems.length) { failed++; console.log(`FAIL ${name}: ${problems.join('; ')}`); }
    else { passed++; console.log(`ok ${name}: ${detail}`); }
  }
  console.log(`${label}: ${passed} passed, ${failed} failed`);
  return failed ? 1 : 0;
}
