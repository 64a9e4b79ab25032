#!/usr/bin/env node
// Read the proxy's Gemini API with the official TypeScript SDK (@google/genai) and check it against
// the OpenAI chat view of the same model through the same proxy. The same checks as
// genai_check.py; see usage below. Tested with @google/genai 3.3.0.
import { TOOL, chatSummary, chatViews, jsonEqual, loadSdk, parseArgs, run, short } from './common.mjs';

const USAGE = `usage: node genai_check.mjs BASE_URL --model M [--tests stream,create,error]
       [--max-tokens N] [--error-model M] [--api-key K] [--prompt P] [--tool] [--timeout S] [--quiet]
  stream  ai.models.generateContentStream(): text, thought parts, functionCall parts, finishReason
          (last chunk only), usageMetadata (last chunk) == the chat view's
  create  ai.models.generateContent() agrees with the chat view
  error   --error-model (default demo/broken) fails mid-stream: the SDK's own ApiError after partial text
SDKs from \${CLIENT_SDKS:-~/.cache/client-sdks}/node_modules or NODE_PATH (tests/clients/setup.sh).`;

const a = parseArgs(process.argv, { tests: 'stream,create,error', usage: USAGE });
const { sdk, version } = loadSdk('@google/genai');
const { GoogleGenAI, ApiError } = sdk;
if (!a.quiet) console.log(`@google/genai ${version}`);

// The Gemini finishReason each chat finish_reason stands for.
const FINISH_REASONS = { stop: 'STOP', tool_calls: 'STOP', length: 'MAX_TOKENS', content_filter: 'SAFETY' };

const ai = () => new GoogleGenAI({ apiKey: a.apiKey, httpOptions: { baseUrl: a.baseUrl, apiVersion: 'v1beta', timeout: a.timeout * 1000 } });

function request(model) {
  const config = { maxOutputTokens: a.maxTokens };
  if (a.tool) config.tools = [{ functionDeclarations: [{ name: TOOL.name, description: TOOL.description, parametersJsonSchema: TOOL.schema }] }];
  return { model, contents: a.prompt, config };
}

// What a sequence of GenerateContentResponse chunks said.
class Reader {
  constructor() {
    Object.assign(this, { text: '', thoughts: '', calls: [], finish: [], usage: [], chunks: 0, candidateCounts: new Set() });
  }

  read(r) {
    const i = this.chunks++;
    const cands = r.candidates ?? [];
    this.candidateCounts.add(cands.length);
    const c = cands[0];
    if (c) {
      for (const part of c.content?.parts ?? []) {
        if (typeof part.text === 'string') {
          if (part.thought) this.thoughts += part.text;
          else this.text += part.text;
        }
        if (part.functionCall) this.calls.push({ name: part.functionCall.name, args: part.functionCall.args ?? {} });
      }
      if (c.finishReason != null) this.finish.push([i, c.finishReason]);
    }
    if (r.usageMetadata != null) this.usage.push([i, r.usageMetadata]);
  }

  get finishReason() { return this.finish.at(-1)?.[1] ?? null; }

  get lastUsage() { return this.usage.at(-1)?.[1] ?? null; }

  describe() {
    const u = this.lastUsage;
    const usage = u ? [u.promptTokenCount, u.candidatesTokenCount, u.thoughtsTokenCount, u.totalTokenCount].join('/') : 'none';
    return `${this.text.length} chars, thoughts ${this.thoughts.length} chars, ${this.calls.length} function calls, `
      + `finishReason ${this.finishReason}, usage prompt/candidates/thoughts/total ${usage}`;
  }
}

const chat = chatViews(a);

function compareWithChat(t, r, cv) {
  t.need(cv.error === null, `the chat view failed: ${JSON.stringify(cv.error)}`);
  t.need(r.text === cv.text, `text ${short(r.text)} != chat view's ${short(cv.text)}`);
  t.need(r.thoughts === cv.reasoning, `thought text ${short(r.thoughts)} != chat view's reasoning_content ${short(cv.reasoning)}`);
  const chatCalls = cv.toolCalls.map((c) => ({ name: c.name, args: c.arguments }));
  t.need(jsonEqual(r.calls, chatCalls), `function calls ${short(r.calls, 300)} != chat view's tool calls ${short(chatCalls, 300)}`);
  const want = FINISH_REASONS[cv.finishReason] ?? `(no mapping for ${cv.finishReason})`;
  t.need(r.finishReason === want, `finishReason ${r.finishReason} but the chat view's finish_reason ${cv.finishReason} means ${want}`);
  const u = r.lastUsage;
  if (cv.usage === null) {
    t.say('the chat view has no usage: usageMetadata must be absent or all 0');
    t.need(!u || Object.values(u).every((v) => !v), `usageMetadata ${JSON.stringify(u)} invented: the chat view has none`);
    return;
  }
  if (!t.need(u != null, `no usageMetadata, but the chat view has usage ${JSON.stringify(cv.usage)}`)) return;
  t.need((u.promptTokenCount ?? 0) === (cv.usage.prompt_tokens ?? 0), `promptTokenCount ${u.promptTokenCount} != prompt_tokens ${cv.usage.prompt_tokens}`);
  const out = (u.candidatesTokenCount ?? 0) + (u.thoughtsTokenCount ?? 0);
  t.need(out === (cv.usage.completion_tokens ?? 0), `candidatesTokenCount + thoughtsTokenCount = ${out} != completion_tokens ${cv.usage.completion_tokens}`);
  t.need((u.totalTokenCount ?? 0) === (cv.usage.total_tokens ?? 0), `totalTokenCount ${u.totalTokenCount} != total_tokens ${cv.usage.total_tokens}`);
}

const tests = {
  async stream(t) {
    const r = new Reader();
    for await (const chunk of await ai().models.generateContentStream(request(a.model))) r.read(chunk);
    t.say(`text: ${short(r.text, 200)}`);
    if (r.thoughts) t.say(`thoughts: ${short(r.thoughts, 200)}`);
    t.need(r.chunks > 0, 'no chunk');
    t.need([...r.candidateCounts].every((n) => n === 1), `chunks with ${[...r.candidateCounts]} candidates (want 1)`);
    t.need(r.finish.length === 1 && r.finish[0][0] === r.chunks - 1,
      `finishReason in chunks ${r.finish.map(([i]) => i)} of ${r.chunks}: want it in the last chunk only`);
    t.need(r.usage.length === 0 || r.usage.at(-1)[0] === r.chunks - 1,
      `usageMetadata in chunks ${r.usage.map(([i]) => i)} of ${r.chunks}: want it in the last chunk`);
    compareWithChat(t, r, await chat(t, a.model));
    return `${r.chunks} chunks, ${r.describe()}`;
  },
  async create(t) {
    const resp = await ai().models.generateContent(request(a.model));
    t.say(`response: ${short(resp, 400)}`);
    const r = new Reader();
    r.read(resp);
    t.need(r.candidateCounts.has(1) && r.candidateCounts.size === 1, `${[...r.candidateCounts]} candidates (want 1)`);
    compareWithChat(t, r, await chat(t, a.model));
    return r.describe();
  },
  async error(t) {
    const r = new Reader();
    let err = null;
    try {
      for await (const chunk of await ai().models.generateContentStream(request(a.errorModel))) r.read(chunk);
    } catch (e) {
      err = e;
    }
    const cv = await chat(t, a.errorModel);
    if (!t.need(err !== null, `${a.errorModel}: the stream ended without an error (${r.text.length} chars)`)) return '';
    const name = err?.constructor?.name;
    t.say(`error ${name} (status ${err?.status}): ${err?.message}`);
    t.say(`partial text: ${short(r.text, 200)}`);
    if (!(err instanceof ApiError)) t.say(err?.stack ?? String(err));
    t.need(err instanceof ApiError, `${name} is not the SDK's ApiError`);
    t.need(r.text !== '', 'the error came before any text');
    // The SDK's message: `got status: STATUS. {"error":{...}}`.
    const json = /\{.*\}$/s.exec(err?.message ?? '')?.[0];
    let payload = null;
    try { payload = json ? JSON.parse(json) : null; } catch { /* reported below */ }
    const e = payload?.error;
    t.need(Number.isInteger(e?.code) && typeof e?.message === 'string' && typeof e?.status === 'string',
      `the error payload ${short(json ?? err?.message, 300)} is not {"error":{"code":int,"message","status"}}`);
    t.need(err?.status === e?.code && e?.code >= 400 && e?.code < 600, `ApiError.status ${err?.status} / error.code ${e?.code}: want one HTTP error status`);
    t.need(cv.error !== null, `the chat view of ${a.errorModel} did not fail (${chatSummary(cv)})`);
    if (cv.error) {
      t.need(r.text === cv.text, `partial text ${short(r.text)} != the chat view's ${short(cv.text)}`);
      t.need(!cv.error.code || (err?.message ?? '').includes(cv.error.code), `the chat view's error code ${cv.error.code} is not in the error`);
    }
    return `${name} after ${r.text.length} chars: status ${err?.status} ${e?.status}: ${short(e?.message ?? err?.message, 200)}`;
  },
};

process.exitCode = await run('genai_check.mjs', a, tests);
