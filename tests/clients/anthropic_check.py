#!/usr/bin/env python3
"""Read the proxy's Anthropic Messages API with the official `anthropic` Python SDK and check it
against the OpenAI chat view of the same model through the same proxy (the `openai` SDK).

usage:
  anthropic_check.py BASE_URL --model M [--tests LIST] [--max-tokens N] [--error-model M]
                     [--api-key K] [--prompt P] [--tool] [--timeout S] [--quiet]

  BASE_URL  the proxy, e.g. http://127.0.0.1:8080 (the SDK's base_url; it requests /v1/messages)
  --tests   comma list, default stream,final,create,prefix,error
    stream  client.messages.stream(): text, thinking, tool_use blocks, stop_reason and usage equal
            the chat view's text, reasoning_content, tool calls, finish_reason (mapped) and usage
    final   stream.get_final_message() agrees with what was streamed
    create  non-streaming messages.create() agrees with the chat view
    prefix  the SDK with base_url BASE_URL/anthropic streams the same text
    error   --error-model (default demo/broken) fails mid-stream: the SDK raises its own APIError
            after partial text, the same partial text and error code as the chat view's
  --tool    declare a get_weather tool in both requests (for real models that may call it)

Prints `ok TEST: ...` or `FAIL TEST: ...` per test and a closing `N passed, N failed` line;
exit status 1 when a test failed. Tested with anthropic 2.16.0 and openai 3.52.0.
"""
from __future__ import annotations

import json
import os
import sys
from typing import Any

sys.dont_write_bytecode = True  # no __pycache__ beside the scripts
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import anthropic  # noqa: E402

from chat_view import TOOL_DESCRIPTION, TOOL_NAME, TOOL_SCHEMA, summary  # noqa: E402
from check_common import Test, chat, exc, exc_name, main, print_traceback, say, say_traceback, short  # noqa: E402

# The chat finish_reason each Anthropic stop_reason stands for.
STOP_REASONS = {
    "stop": {"end_turn", "stop_sequence"},
    "length": {"max_tokens"},
    "tool_calls": {"tool_use"},
    "content_filter": {"refusal"},
}

def client(a, base_url: str | None = None) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=base_url or a.base_url, api_key=a.api_key, timeout=a.timeout,
                               max_retries=0)


def request(a, model: str) -> dict:
    kwargs: dict[str, Any] = {"model": model, "max_tokens": a.max_tokens,
                              "messages": [{"role": "user", "content": a.prompt}]}
    if a.tool:
        kwargs["tools"] = [{"name": TOOL_NAME, "description": TOOL_DESCRIPTION, "input_schema": TOOL_SCHEMA}]
    return kwargs


def usage_of(u: Any) -> dict:
    """An Anthropic usage object's counts (missing or null counts are 0)."""
    if u is None:
        return {"input_tokens": 0, "output_tokens": 0, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}
    return {k: getattr(u, k, None) or 0 for k in
            ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")}


def blocks_of(content: list) -> dict:
    """Text, thinking and tool_use of a message's content blocks."""
    return {
        "text": "".join(b.text for b in content if b.type == "text"),
        "thinking": "".join(b.thinking for b in content if b.type == "thinking"),
        "tool_uses": [{"name": b.name, "input": b.input} for b in content if b.type == "tool_use"],
        "types": [b.type for b in content],
    }


def compare_with_chat(t: Test, got: dict, chat: dict) -> None:
    """got: text, thinking, tool_uses, stop_reason, usage (usage_of)."""
    t.need(chat["error"] is None, f"the chat view failed: {chat['error']}")
    t.need(got["text"] == chat["text"], f"text {short(got['text'])} != chat view's {short(chat['text'])}")
    t.need(got["thinking"] == chat["reasoning"],
           f"thinking {short(got['thinking'])} != chat view's reasoning_content {short(chat['reasoning'])}")
    chat_calls = [{"name": c["name"], "input": c["arguments"]} for c in chat["tool_calls"]]
    t.need(got["tool_uses"] == chat_calls, f"tool_use blocks {short(got['tool_uses'], 300)} != chat view's "
                                           f"tool calls {short(chat_calls, 300)}")
    want = STOP_REASONS.get(chat["finish_reason"], {f"(no mapping for {chat['finish_reason']!r})"})
    t.need(got["stop_reason"] in want,
           f"stop_reason {got['stop_reason']!r} but the chat view's finish_reason {chat['finish_reason']!r} "
           f"means {sorted(want)}")
    u, cu = got["usage"], chat["usage"]
    inputs = u["input_tokens"] + u["cache_read_input_tokens"] + u["cache_creation_input_tokens"]
    if cu is None:
        say("the chat view has no usage: the Anthropic counts must all be 0")
        t.need(inputs == 0 and u["output_tokens"] == 0, f"usage {u} invented: the chat view has none")
    else:
        t.need(u["output_tokens"] == (cu.get("completion_tokens") or 0),
               f"output_tokens {u['output_tokens']} != completion_tokens {cu.get('completion_tokens')}")
        t.need(inputs == (cu.get("prompt_tokens") or 0),
               f"input_tokens + cache_read + cache_creation = {inputs} != prompt_tokens {cu.get('prompt_tokens')} "
               f"({u})")


# ------------------------------------------------------------------ the stream, read once
_STREAM: dict | None = None


def streamed(a) -> dict:
    """One client.messages.stream() run: what its events said, and get_final_message()."""
    global _STREAM
    if _STREAM is not None:
        return _STREAM
    s: dict[str, Any] = {"text": "", "thinking": "", "signatures": 0, "tool_uses": [], "stop_reason": None,
                         "start_usage": None, "delta_usage": None, "types": [], "final": None, "error": None,
                         "open_blocks": set(), "block_types": [], "text_deltas": 0, "input_json": {}}
    try:
        with client(a).messages.stream(**request(a, a.model)) as stream:
            for ev in stream:
                s["types"].append(ev.type)
                if ev.type == "message_start":
                    s["start_usage"] = ev.message.usage
                elif ev.type == "content_block_start":
                    s["open_blocks"].add(ev.index)
                    s["block_types"].append(ev.content_block.type)
                elif ev.type == "content_block_delta" and ev.delta.type == "input_json_delta":
                    s["input_json"][ev.index] = s["input_json"].get(ev.index, "") + ev.delta.partial_json
                elif ev.type == "text":
                    s["text"] += ev.text
                    s["text_deltas"] += 1
                elif ev.type == "thinking":
                    s["thinking"] += ev.thinking
                elif ev.type == "signature":
                    s["signatures"] += 1
                elif ev.type == "content_block_stop":
                    s["open_blocks"].discard(ev.index)
                    block = ev.content_block
                    if block.type == "tool_use":
                        raw = s["input_json"].get(ev.index, "")
                        s["tool_uses"].append({"name": block.name, "input": json.loads(raw) if raw.strip() else {}})
                elif ev.type == "message_delta":
                    s["stop_reason"] = ev.delta.stop_reason
                    s["delta_usage"] = ev.usage
            s["final"] = stream.get_final_message()
    except Exception as e:  # reported by the tests that read this stream
        s["error"] = e
        print_traceback()
    # What the events said, usage as the SDK accumulates it: message_start's counts, each replaced
    # by a count message_delta carries.
    usage = usage_of(s["start_usage"])
    if s["delta_usage"] is not None:
        for k, v in usage_of(s["delta_usage"]).items():
            if getattr(s["delta_usage"], k, None) is not None:
                usage[k] = v
    s["usage"] = usage
    _STREAM = s
    return s


# ------------------------------------------------------------------------------ tests
def t_stream(a, t: Test) -> str:
    s = streamed(a)
    if not t.need(s["error"] is None, f"the stream raised {exc(s['error'])}"):
        return ""
    say(f"events: {s['types'][:6]}{'…' if len(s['types']) > 6 else ''} ({len(s['types'])})")
    say(f"text: {short(s['text'], 200)}")
    if s["thinking"]:
        say(f"thinking: {short(s['thinking'], 200)}")
    raw_types = [x for x in s["types"] if x in ("message_start", "message_delta", "message_stop")]
    t.need(s["types"][:1] == ["message_start"], f"the first event is {s['types'][:1]}, not message_start")
    t.need(s["types"][-1:] == ["message_stop"], f"the last event is {s['types'][-1:]}, not message_stop")
    t.need(raw_types.count("message_delta") == 1, f"{raw_types.count('message_delta')} message_delta events, not 1")
    t.need(not s["open_blocks"], f"content blocks {sorted(s['open_blocks'])} were never stopped")
    compare_with_chat(t, s, chat(a, a.model))
    return (f"{s['text_deltas']} text deltas, {len(s['text'])} chars, thinking {len(s['thinking'])} chars "
            f"({s['signatures']} signatures), {len(s['tool_uses'])} tool_use, stop_reason {s['stop_reason']}, "
            f"usage in={s['usage']['input_tokens']} out={s['usage']['output_tokens']}")


def t_final(a, t: Test) -> str:
    s = streamed(a)
    if not t.need(s["error"] is None, f"the stream raised {exc(s['error'])}"):
        return ""
    m = s["final"]
    b = blocks_of(m.content)
    say(f"final message: {short(m.model_dump(exclude_none=True), 400)}")
    t.need(m.type == "message" and m.role == "assistant", f"type {m.type!r} role {m.role!r}")
    t.need(b["types"] == s["block_types"], f"content block types {b['types']} != streamed {s['block_types']}")
    t.need(b["text"] == s["text"], f"text {short(b['text'])} != streamed {short(s['text'])}")
    t.need(b["thinking"] == s["thinking"], f"thinking {short(b['thinking'])} != streamed {short(s['thinking'])}")
    t.need(b["tool_uses"] == s["tool_uses"], f"tool_use {b['tool_uses']} != streamed {s['tool_uses']}")
    t.need(m.stop_reason == s["stop_reason"], f"stop_reason {m.stop_reason!r} != streamed {s['stop_reason']!r}")
    t.need(usage_of(m.usage) == s["usage"], f"usage {usage_of(m.usage)} != streamed {s['usage']}")
    return f"{m.id}: {b['types']}, stop_reason {m.stop_reason}, usage {usage_of(m.usage)}"


def t_create(a, t: Test) -> str:
    m = client(a).messages.create(**request(a, a.model))
    say(f"message: {short(m.model_dump(exclude_none=True), 400)}")
    t.need(m.type == "message" and m.role == "assistant", f"type {m.type!r} role {m.role!r}")
    b = blocks_of(m.content)
    compare_with_chat(t, {**b, "stop_reason": m.stop_reason, "usage": usage_of(m.usage)}, chat(a, a.model))
    return f"{m.id}: {len(b['text'])} chars, {b['types']}, stop_reason {m.stop_reason}, usage {usage_of(m.usage)}"


def t_prefix(a, t: Test) -> str:
    base = a.base_url.rstrip("/") + "/anthropic"
    with client(a, base).messages.stream(**request(a, a.model)) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    want = chat(a, a.model)["text"]
    t.need(text == want, f"text {short(text)} via {base} != chat view's {short(want)}")
    return f"base_url {base}: {len(text)} chars, stop_reason {final.stop_reason}"


def t_error(a, t: Test) -> str:
    text, err = "", None
    try:
        with client(a).messages.stream(**request(a, a.error_model)) as stream:
            for ev in stream:
                if ev.type == "text":
                    text += ev.text
    except Exception as e:
        err = e
    cv = chat(a, a.error_model)
    if not t.need(err is not None, f"{a.error_model}: the stream ended without an exception ({len(text)} chars)"):
        return ""
    name = exc_name(err)
    say(f"exception {name}: {err}")
    say(f"partial text: {short(text, 200)}")
    if not isinstance(err, anthropic.APIError) or isinstance(err, anthropic.APIConnectionError):
        say_traceback(err)
    t.need(isinstance(err, anthropic.APIError), f"{name} is not an anthropic.APIError")
    t.need(not isinstance(err, anthropic.APIConnectionError), f"{name}: the connection failed, no error event was read")
    t.need(text != "", "the exception came before any text")
    body = getattr(err, "body", None)
    t.need(isinstance(body, dict) and body.get("type") == "error" and isinstance(body.get("error"), dict)
           and isinstance(body["error"].get("type"), str) and isinstance(body["error"].get("message"), str),
           f'the error body {short(body, 300)} is not {{"type":"error","error":{{"type":…,"message":…}}}}')
    t.need(cv["error"] is not None, f"the chat view of {a.error_model} did not fail ({summary(cv)})")
    if cv["error"] is not None:
        t.need(text == cv["text"],
               f"partial text {short(text)} != the chat view's {short(cv['text'])}")
        code = cv["error"]["code"]
        t.need(not code or code in json.dumps(body), f"the chat view's error code {code!r} is not in the error body")
    etype = body["error"].get("type") if isinstance(body, dict) and isinstance(body.get("error"), dict) else None
    return f"{name} after {len(text)} chars: error.type {etype!r}: {short(str(err), 200)}"


TESTS = {"stream": t_stream, "final": t_final, "create": t_create, "prefix": t_prefix, "error": t_error}


if __name__ == "__main__":
    sys.exit(main("anthropic_check", __doc__, TESTS))
