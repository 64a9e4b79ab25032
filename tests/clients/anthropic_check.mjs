#!/usr/bin/env node
// Read the proxy's Anthropic Messages API with the official TypeScript SDK (@anthropic-ai/sdk)
// and check it against the OpenAI chat view of the same model through the same proxy.
// The same checks as anthropic_check.py; see usage below. Tested with @anthropic-ai/sdk 1.16.0.
import { TOOL, chatSummary, chatViews, jsonEqual, loadSdk, parseArgs, run, short } from './common.mjs';

const USAGE = `usage: node anthropic_check.mjs BASE_URL --model M [--tests stream,final,create,prefix,error]
       [--max-tokens N] [--error-model M] [--api-key K] [--prompt P] [--tool] [--timeout S] [--quiet]
  stream  client.messages.stream(): text, thinking, tool_use, stop_reason, usage == the chat view's
  final   stream.finalMessage() agrees with what was streamed
  create  non-streaming messages.create() agrees with the chat view
  prefix  the SDK with baseURL BASE_URL/anthropic streams the same text
  error   --error-model (default demo/broken) fails mid-stream: the SDK's own APIError after partial text
SDKs from \${CLIENT_SDKS:-~/.cache/client-sdks}/node_modules or NODE_PATH (tests/clients/setup.sh).`;

const a = parseArgs(process.argv, { tests: 'stream,final,create,prefix,error', usage: USAGE });
const { sdk, version } = loadSdk('@anthropic-ai/sdk');
const Anthropic = sdk.Anthropic ?? sdk.default;
if (!a.quiet) console.log(`@anthropic-ai/sdk ${version}`);

// The chat finish_reason each Anthropic stop_reason stands for.
const STOP_REASONS = { stop: ['end_turn', 'stop_sequence'], length: ['max_tokens'], tool_calls: ['tool_use'], content_filter: ['refusal'] };
const COUNTS = ['input_tokens', 'output_tokens', 'cache_read_input_tokens', 'cache_creation_input_tokens'];

const client = (baseURL = a.baseUrl) => new Anthropic({ baseURL, apiKey: a.apiKey, timeout: a.timeout * 1000, maxRetries: 0 });

function params(model) {
  const p = { model, max_tokens: a.maxTokens, messages: [{ role: 'user', content: a.prompt }] };
  if (a.tool) p.tools = [{ name: TOOL.name, description: TOOL.description, input_schema: TOOL.schema }];
  return p;
}

const usageOf = (u) => Object.fromEntries(COUNTS.map((k) => [k, u?.[k] ?? 0]));

function blocksOf(content) {
  return {
    text: content.filter((b) => b.type === 'text').map((b) => b.text).join(''),
    thinking: content.filter((b) => b.type === 'thinking').map((b) => b.thinking).join(''),
    toolUses: content.filter((b) => b.type === 'tool_use').map((b) => ({ name: b.name, input: b.input })),
    types: content.map((b) => b.type),
  };
}

const chat = chatViews(a);

function compareWithChat(t, got, cv) {
  t.need(cv.error === null, `the chat view failed: ${JSON.stringify(cv.error)}`);
  t.need(got.text === cv.text, `text ${short(got.text)} != chat view's ${short(cv.text)}`);
  t.need(got.thinking === cv.reasoning, `thinking ${short(got.thinking)} != chat view's reasoning_content ${short(cv.reasoning)}`);
  const chatCalls = cv.toolCalls.map((c) => ({ name: c.name, input: c.arguments }));
  t.need(jsonEqual(got.toolUses, chatCalls), `tool_use blocks ${short(got.toolUses, 300)} != chat view's tool calls ${short(chatCalls, 300)}`);
  const want = STOP_REASONS[cv.finishReason] ?? [`(no mapping for ${cv.finishReason})`];
  t.need(want.includes(got.stopReason), `stop_reason ${got.stopReason} but the chat view's finish_reason ${cv.finishReason} means ${want}`);
  const u = got.usage;
  const inputs = u.input_tokens + u.cache_read_input_tokens + u.cache_creation_input_tokens;
  if (cv.usage === null) {
    t.say('the chat view has no usage: the Anthropic counts must all be 0');
    t.need(inputs === 0 && u.output_tokens === 0, `usage ${JSON.stringify(u)} invented: the chat view has none`);
  } else {
    t.need(u.output_tokens === (cv.usage.completion_tokens ?? 0), `output_tokens ${u.output_tokens} != completion_tokens ${cv.usage.completion_tokens}`);
    t.need(inputs === (cv.usage.prompt_tokens ?? 0),
      `input_tokens + cache_read + cache_creation = ${inputs} != prompt_tokens ${cv.usage.prompt_tokens} (${JSON.stringify(u)})`);
  }
}

// One client.messages.stream() run, read once for `stream` and `final`.
let streamed = null;
async function readStream() {
  if (streamed) return streamed;
  const s = { text: '', thinking: '', signatures: 0, toolUses: [], stopReason: null, types: [], blockTypes: [],
    open: new Set(), json: new Map(), blocks: new Map(), textDeltas: 0, startUsage: null, deltaUsage: null, final: null, error: null };
  try {
    const stream = client().messages.stream(params(a.model));
    for await (const ev of stream) {
      s.types.push(ev.type);
      if (ev.type === 'message_start') s.startUsage = ev.message.usage;
      else if (ev.type === 'content_block_start') { s.open.add(ev.index); s.blockTypes.push(ev.content_block.type); s.blocks.set(ev.index, ev.content_block); }
      else if (ev.type === 'content_block_delta') {
        const d = ev.delta;
        if (d.type === 'text_delta') { s.text += d.text; s.textDeltas++; }
        else if (d.type === 'thinking_delta') s.thinking += d.thinking;
        else if (d.type === 'signature_delta') s.signatures++;
        else if (d.type === 'input_json_delta') s.json.set(ev.index, (s.json.get(ev.index) ?? '') + d.partial_json);
      } else if (ev.type === 'content_block_stop') {
        s.open.delete(ev.index);
        const block = s.blocks.get(ev.index);
        if (block?.type === 'tool_use') {
          const raw = s.json.get(ev.index) ?? '';
          s.toolUses.push({ name: block.name, input: raw.trim() ? JSON.parse(raw) : {} });
        }
      } else if (ev.type === 'message_delta') { s.stopReason = ev.delta.stop_reason; s.deltaUsage = ev.usage; }
    }
    s.final = await stream.finalMessage();
  } catch (e) {
    s.error = e;
    if (!a.quiet) console.log(e?.stack ?? e);
  }
  // Usage as the SDK accumulates it: message_start's counts, each replaced by one message_delta carries.
  s.usage = usageOf(s.startUsage);
  for (const k of COUNTS) if (s.deltaUsage?.[k] != null) s.usage[k] = s.deltaUsage[k];
  streamed = s;
  return s;
}

const tests = {
  async stream(t) {
    const s = await readStream();
    if (!t.need(s.error === null, `the stream threw ${s.error?.constructor?.name}: ${s.error?.message}`)) return '';
    t.say(`events: ${s.types.slice(0, 6).join(',')}… (${s.types.length})`);
    t.say(`text: ${short(s.text, 200)}`);
    if (s.thinking) t.say(`thinking: ${short(s.thinking, 200)}`);
    t.need(s.types[0] === 'message_start', `the first event is ${s.types[0]}, not message_start`);
    t.need(s.types.at(-1) === 'message_stop', `the last event is ${s.types.at(-1)}, not message_stop`);
    const deltas = s.types.filter((x) => x === 'message_delta').length;
    t.need(deltas === 1, `${deltas} message_delta events, not 1`);
    t.need(s.open.size === 0, `content blocks ${[...s.open]} were never stopped`);
    compareWithChat(t, s, await chat(t, a.model));
    return `${s.textDeltas} text deltas, ${s.text.length} chars, thinking ${s.thinking.length} chars (${s.signatures} signatures), `
      + `${s.toolUses.length} tool_use, stop_reason ${s.stopReason}, usage in=${s.usage.input_tokens} out=${s.usage.output_tokens}`;
  },
  async final(t) {
    const s = await readStream();
    if (!t.need(s.error === null, `the stream threw ${s.error?.constructor?.name}: ${s.error?.message}`)) return '';
    const m = s.final;
    const b = blocksOf(m.content);
    t.say(`final message: ${short(m, 400)}`);
    t.need(m.type === 'message' && m.role === 'assistant', `type ${m.type} role ${m.role}`);
    t.need(jsonEqual(b.types, s.blockTypes), `content block types ${b.types} != streamed ${s.blockTypes}`);
    t.need(b.text === s.text, `text ${short(b.text)} != streamed ${short(s.text)}`);
    t.need(b.thinking === s.thinking, `thinking ${short(b.thinking)} != streamed ${short(s.thinking)}`);
    t.need(jsonEqual(b.toolUses, s.toolUses), `tool_use ${short(b.toolUses, 300)} != streamed ${short(s.toolUses, 300)}`);
    t.need(m.stop_reason === s.stopReason, `stop_reason ${m.stop_reason} != streamed ${s.stopReason}`);
    t.need(jsonEqual(usageOf(m.usage), s.usage), `usage ${JSON.stringify(usageOf(m.usage))} != streamed ${JSON.stringify(s.usage)}`);
    return `${m.id}: ${b.types}, stop_reason ${m.stop_reason}, usage ${JSON.stringify(usageOf(m.usage))}`;
  },
  async create(t) {
    const m = await client().messages.create(params(a.model));
    t.say(`message: ${short(m, 400)}`);
    t.need(m.type === 'message' && m.role === 'assistant', `type ${m.type} role ${m.role}`);
    const b = blocksOf(m.content);
    compareWithChat(t, { ...b, stopReason: m.stop_reason, usage: usageOf(m.usage) }, await chat(t, a.model));
    return `${m.id}: ${b.text.length} chars, ${b.types}, stop_reason ${m.stop_reason}, usage ${JSON.stringify(usageOf(m.usage))}`;
  },
  async prefix(t) {
    const base = `${a.baseUrl}/anthropic`;
    const stream = client(base).messages.stream(params(a.model));
    let text = '';
    stream.on('text', (delta) => { text += delta; });
    const final = await stream.finalMessage();
    const want = (await chat(t, a.model)).text;
    t.need(text === want, `text ${short(text)} via ${base} != chat view's ${short(want)}`);
    return `baseURL ${base}: ${text.length} chars, stop_reason ${final.stop_reason}`;
  },
  async error(t) {
    let text = '';
    let err = null;
    try {
      const stream = client().messages.stream(params(a.errorModel));
      for await (const ev of stream) {
        if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') text += ev.delta.text;
      }
      await stream.finalMessage();
    } catch (e) {
      err = e;
    }
    const cv = await chat(t, a.errorModel);
    if (!t.need(err !== null, `${a.errorModel}: the stream ended without an error (${text.length} chars)`)) return '';
    const name = err?.constructor?.name;
    t.say(`error ${name}: ${err?.message}`);
    t.say(`partial text: ${short(text, 200)}`);
    t.need(err instanceof sdk.APIError, `${name} is not an Anthropic APIError`);
    t.need(!(err instanceof sdk.APIConnectionError), `${name}: the connection failed, no error event was read`);
    t.need(text !== '', 'the error came before any text');
    const body = err?.error;
    t.need(body?.type === 'error' && typeof body?.error?.type === 'string' && typeof body?.error?.message === 'string',
      `the error body ${short(body, 300)} is not {"type":"error","error":{"type":…,"message":…}}`);
    t.need(cv.error !== null, `the chat view of ${a.errorModel} did not fail (${chatSummary(cv)})`);
    if (cv.error) {
      t.need(text === cv.text, `partial text ${short(text)} != the chat view's ${short(cv.text)}`);
      t.need(!cv.error.code || JSON.stringify(body ?? null).includes(cv.error.code), `the chat view's error code ${cv.error.code} is not in the error body`);
    }
    return `${name} after ${text.length} chars: error.type ${body?.error?.type}: ${short(err?.message, 200)}`;
  },
};

process.exitCode = await run('anthropic_check.mjs', a, tests);
