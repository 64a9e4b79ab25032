#!/usr/bin/env python3
"""Read the proxy's Gemini API with the official `google-genai` Python SDK and check it against
the OpenAI chat view of the same model through the same proxy (the `openai` SDK).

usage:
  genai_check.py BASE_URL --model M [--tests LIST] [--max-tokens N] [--error-model M]
                 [--api-key K] [--prompt P] [--tool] [--timeout S] [--quiet]

  BASE_URL  the proxy, e.g. http://127.0.0.1:8080 (the SDK requests
            /v1beta/models/M:streamGenerateContent?alt=sse, M may hold a "/")
  --tests   comma list, default stream,create,error
    stream  models.generate_content_stream(): text, thought parts, function calls, finishReason
            (last chunk only) and usageMetadata (last chunk) equal the chat view's text,
            reasoning_content, tool calls, finish_reason (mapped) and usage
    create  models.generate_content() agrees with the chat view
    error   --error-model (default demo/broken) fails mid-stream: the SDK raises its own
            google.genai.errors.APIError after partial text, the same partial text as the chat view
  --tool    declare a get_weather function in both requests (for real models that may call it)

Prints `ok TEST: ...` or `FAIL TEST: ...` per test and a closing `N passed, N failed` line;
exit status 1 when a test failed. Tested with google-genai 3.6.1 and openai 3.52.0.
"""
from __future__ import annotations

import json
import os
import sys
from typing import Any

sys.dont_write_bytecode = True  # no __pycache__ beside the scripts
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from google import genai  # noqa: E402
from google.genai import errors, types  # noqa: E402

from chat_view import TOOL_DESCRIPTION, TOOL_NAME, TOOL_SCHEMA, summary  # noqa: E402
from check_common import Test, chat, exc_name, main, say, say_traceback, short  # noqa: E402

# The Gemini finishReason each chat finish_reason stands for.
FINISH_REASONS = {"stop": "STOP", "tool_calls": "STOP", "length": "MAX_TOKENS", "content_filter": "SAFETY"}

def client(a) -> genai.Client:
    return genai.Client(api_key=a.api_key, http_options=types.HttpOptions(
        base_url=a.base_url, api_version="v1beta", timeout=int(a.timeout * 1000)))


def config(a) -> types.GenerateContentConfig:
    tools = None
    if a.tool:
        tools = [types.Tool(function_declarations=[types.FunctionDeclaration(
            name=TOOL_NAME, description=TOOL_DESCRIPTION, parameters_json_schema=TOOL_SCHEMA)])]
    return types.GenerateContentConfig(max_output_tokens=a.max_tokens, tools=tools)


def enum_name(v: Any) -> str | None:
    return None if v is None else getattr(v, "value", None) or str(v)


def usage_of(u: Any) -> dict | None:
    if u is None:
        return None
    return {k: getattr(u, k, None) for k in
            ("prompt_token_count", "candidates_token_count", "thoughts_token_count", "total_token_count")}


class Reader:
    """What a sequence of GenerateContentResponse chunks said."""

    def __init__(self):
        self.text = ""
        self.thoughts = ""
        self.calls: list[dict] = []
        self.finish: list[tuple[int, str]] = []  # (chunk index, finishReason)
        self.usage: list[tuple[int, dict]] = []  # (chunk index, usageMetadata)
        self.chunks = 0
        self.candidate_counts: set[int] = set()

    def read(self, r: types.GenerateContentResponse) -> None:
        i = self.chunks
        self.chunks += 1
        cands = r.candidates or []
        self.candidate_counts.add(len(cands))
        if cands:
            c = cands[0]
            for part in (c.content.parts or []) if c.content else []:
                if part.text is not None:
                    if part.thought:
                        self.thoughts += part.text
                    else:
                        self.text += part.text
                if part.function_call is not None:
                    self.calls.append({"name": part.function_call.name, "args": part.function_call.args or {}})
            if c.finish_reason is not None:
                self.finish.append((i, enum_name(c.finish_reason)))
        if r.usage_metadata is not None:
            self.usage.append((i, usage_of(r.usage_metadata)))

    @property
    def finish_reason(self) -> str | None:
        return self.finish[-1][1] if self.finish else None

    @property
    def last_usage(self) -> dict | None:
        return self.usage[-1][1] if self.usage else None


def compare_with_chat(t: Test, got: Reader, chat: dict) -> None:
    t.need(chat["error"] is None, f"the chat view failed: {chat['error']}")
    t.need(got.text == chat["text"], f"text {short(got.text)} != chat view's {short(chat['text'])}")
    t.need(got.thoughts == chat["reasoning"],
           f"thought text {short(got.thoughts)} != chat view's reasoning_content {short(chat['reasoning'])}")
    chat_calls = [{"name": c["name"], "args": c["arguments"]} for c in chat["tool_calls"]]
    t.need(got.calls == chat_calls,
           f"function calls {short(got.calls, 300)} != chat view's tool calls {short(chat_calls, 300)}")
    want = FINISH_REASONS.get(chat["finish_reason"], f"(no mapping for {chat['finish_reason']!r})")
    t.need(got.finish_reason == want, f"finishReason {got.finish_reason!r} but the chat view's finish_reason "
                                      f"{chat['finish_reason']!r} means {want!r}")
    u, cu = got.last_usage, chat["usage"]
    if cu is None:
        say("the chat view has no usage: usageMetadata must be absent or all 0")
        t.need(u is None or not any(u.values()), f"usageMetadata {u} invented: the chat view has none")
        return
    if not t.need(u is not None, f"no usageMetadata, but the chat view has usage {cu}"):
        return
    t.need((u["prompt_token_count"] or 0) == (cu.get("prompt_tokens") or 0),
           f"promptTokenCount {u['prompt_token_count']} != prompt_tokens {cu.get('prompt_tokens')}")
    out = (u["candidates_token_count"] or 0) + (u["thoughts_token_count"] or 0)
    t.need(out == (cu.get("completion_tokens") or 0),
           f"candidatesTokenCount + thoughtsTokenCount = {out} != completion_tokens {cu.get('completion_tokens')}")
    t.need((u["total_token_count"] or 0) == (cu.get("total_tokens") or 0),
           f"totalTokenCount {u['total_token_count']} != total_tokens {cu.get('total_tokens')}")


def describe(r: Reader) -> str:
    u = r.last_usage
    usage = "none" if u is None else "/".join(str(u[k]) for k in (
        "prompt_token_count", "candidates_token_count", "thoughts_token_count", "total_token_count"))
    return (f"{len(r.text)} chars, thoughts {len(r.thoughts)} chars, {len(r.calls)} function calls, "
            f"finishReason {r.finish_reason}, usage prompt/candidates/thoughts/total {usage}")


# ------------------------------------------------------------------------------ tests
def t_stream(a, t: Test) -> str:
    r = Reader()
    c = client(a)  # kept: a Client closes its connections when collected
    for chunk in c.models.generate_content_stream(model=a.model, contents=a.prompt, config=config(a)):
        r.read(chunk)
    say(f"text: {short(r.text, 200)}")
    if r.thoughts:
        say(f"thoughts: {short(r.thoughts, 200)}")
    t.need(r.chunks > 0, "no chunk")
    t.need(r.candidate_counts <= {1}, f"chunks with {sorted(r.candidate_counts)} candidates (want 1)")
    t.need(len(r.finish) == 1 and r.finish[0][0] == r.chunks - 1,
           f"finishReason in chunks {[i for i, _ in r.finish]} of {r.chunks}: want it in the last chunk only")
    t.need(not r.usage or r.usage[-1][0] == r.chunks - 1,
           f"usageMetadata in chunks {[i for i, _ in r.usage]} of {r.chunks}: want it in the last chunk")
    compare_with_chat(t, r, chat(a, a.model))
    return f"{r.chunks} chunks, {describe(r)}"


def t_create(a, t: Test) -> str:
    c = client(a)
    resp = c.models.generate_content(model=a.model, contents=a.prompt, config=config(a))
    say(f"response: {short(resp.model_dump(exclude_none=True, mode='json'), 400)}")
    r = Reader()
    r.read(resp)
    t.need(r.candidate_counts == {1}, f"{sorted(r.candidate_counts)} candidates (want 1)")
    compare_with_chat(t, r, chat(a, a.model))
    return describe(r)


def t_error(a, t: Test) -> str:
    r, err = Reader(), None
    c = client(a)
    try:
        for chunk in c.models.generate_content_stream(model=a.error_model, contents=a.prompt, config=config(a)):
            r.read(chunk)
    except Exception as e:
        err = e
    cv = chat(a, a.error_model)
    if not t.need(err is not None, f"{a.error_model}: the stream ended without an exception ({len(r.text)} chars)"):
        return ""
    name = exc_name(err)
    say(f"exception {name}: {err}")
    say(f"partial text: {short(r.text, 200)}")
    if not isinstance(err, errors.APIError):
        say_traceback(err)
    t.need(isinstance(err, errors.APIError), f"{name} is not a google.genai.errors.APIError")
    t.need(r.text != "", "the exception came before any text")
    details = getattr(err, "details", None)
    e = details.get("error") if isinstance(details, dict) else None
    t.need(isinstance(e, dict) and isinstance(e.get("code"), int) and isinstance(e.get("message"), str)
           and isinstance(e.get("status"), str),
           f'the error payload {short(details, 300)} is not {{"error":{{"code":int,"message","status"}}}}')
    if isinstance(e, dict):
        t.need(e.get("code") == getattr(err, "code", None), f"error.code {e.get('code')} != the SDK's code {err.code}")
        t.need(isinstance(e.get("code"), int) and 400 <= e["code"] < 600,
               f"error.code {e.get('code')} is not an HTTP error status")
    t.need(cv["error"] is not None, f"the chat view of {a.error_model} did not fail ({summary(cv)})")
    if cv["error"] is not None:
        t.need(r.text == cv["text"], f"partial text {short(r.text)} != the chat view's {short(cv['text'])}")
        code = cv["error"]["code"]
        t.need(not code or code in json.dumps(details), f"the chat view's error code {code!r} is not in the error")
    return (f"{name} after {len(r.text)} chars: code {getattr(err, 'code', None)} status "
            f"{getattr(err, 'status', None)}: {short(getattr(err, 'message', None) or str(err), 200)}")


TESTS = {"stream": t_stream, "create": t_create, "error": t_error}


if __name__ == "__main__":
    sys.exit(main("genai_check", __doc__, TESTS))
