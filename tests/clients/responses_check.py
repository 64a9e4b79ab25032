#!/usr/bin/env python3
"""Read the proxy's OpenAI Responses API (/v1/responses) and text completions (/v1/completions)
with the official `openai` Python SDK and check them against the OpenAI chat view of the same
model through the same proxy (/v1/chat/completions, the same SDK).

usage:
  responses_check.py BASE_URL --model M [--tests LIST] [--max-tokens N] [--error-model M]
                     [--api-key K] [--prompt P] [--tool] [--timeout S] [--quiet]

  BASE_URL  the proxy, e.g. http://127.0.0.1:8080 (the SDK's base_url is BASE_URL/v1)
  --tests   comma list, default responses,responses_create,completions,error
    responses         client.responses.stream(): the final response (get_final_response(), or the
                      response of response.incomplete/failed, which that helper does not return)
                      has the chat view's text as output_text, its reasoning_content as the
                      reasoning items' summary text, its tool calls as function_call items, the
                      status its finish_reason means (length: incomplete/max_output_tokens,
                      content_filter: incomplete/content_filter, else completed) and its token
                      counts (usage null when the chat view has none). The raw events: the first
                      is response.created, sequence_number runs 0, 1, 2, … without a gap, one
                      terminal event, last, with the response id of response.created
    responses_create  non-streaming responses.create() agrees with the stream: text, status,
                      reasoning, function calls, usage
    completions       completions.create(stream=True): the text of choice 0 is the chat view's
                      text (a refusal counts as text), finish_reason is the chat view's, the last
                      chunk's usage is the chat view's (none when the chat view has none)
    error             --error-model (default demo/broken) fails mid-stream: through Responses the
                      SDK raises its own APIError (or yields an `error` event, then
                      response.failed), through completions it raises its APIError, each after
                      partial text
  --tool    declare a get_weather function tool in the Responses and chat requests (completions
            has no tools: its chat view has none either)

Prints `ok TEST: ...` or `FAIL TEST: ...` per test and a closing `N passed, N failed` line;
exit status 1 when a test failed. Tested with openai 3.52.0.
"""
from __future__ import annotations

import json
import os
import sys
from typing import Any

sys.dont_write_bytecode = True  # no __pycache__ beside the scripts
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import openai  # noqa: E402
from openai import OpenAI  # noqa: E402

from chat_view import TOOL_DESCRIPTION, TOOL_NAME, TOOL_SCHEMA, parse_args_json, summary  # noqa: E402
from check_common import Test, chat, exc, exc_name, main, print_traceback, say, say_traceback, short  # noqa: E402

TERMINAL = ("response.completed", "response.incomplete", "response.failed")
LIFECYCLE = ("response.created", "response.queued", "response.in_progress") + TERMINAL

def client(a) -> OpenAI:
    return OpenAI(base_url=a.base_url.rstrip("/") + "/v1", api_key=a.api_key, timeout=a.timeout, max_retries=0)


def request(a, model: str) -> dict:
    """The Responses request: the prompt as one user message, --max-tokens, --tool."""
    kwargs: dict[str, Any] = {"model": model, "input": [{"role": "user", "content": a.prompt}],
                              "max_output_tokens": a.max_tokens}
    if a.tool:
        kwargs["tools"] = [{"type": "function", "name": TOOL_NAME, "description": TOOL_DESCRIPTION,
                            "parameters": TOOL_SCHEMA, "strict": False}]
    return kwargs


def want_status(finish: str | None) -> tuple[str, str | None]:
    """The Responses status and incomplete_details.reason a chat finish_reason stands for."""
    if finish == "length":
        return "incomplete", "max_output_tokens"
    if finish == "content_filter":
        return "incomplete", "content_filter"
    return "completed", None


def usage_of(u: Any) -> dict | None:
    if u is None:
        return None
    return {k: getattr(u, k, None) for k in ("input_tokens", "output_tokens", "total_tokens")}


def items_of(r: Any) -> dict:
    """What a Response says: text (output_text, and refusal parts), reasoning summary text,
    function calls, status, incomplete reason, usage, output item types."""
    output = list(r.output or [])
    refusal = "".join(getattr(c, "refusal", "") or "" for i in output if i.type == "message"
                      for c in (i.content or []) if c.type == "refusal")
    details = r.incomplete_details
    return {
        "text": (r.output_text or "") + refusal,
        "reasoning": "".join(s.text for i in output if i.type == "reasoning" for s in (i.summary or [])),
        "calls": [{"name": i.name, "arguments": parse_args_json(i.arguments)} for i in output
                  if i.type == "function_call"],
        "status": r.status,
        "reason": getattr(details, "reason", None) if details is not None else None,
        "usage": usage_of(r.usage),
        "types": [i.type for i in output],
    }


def compare_with_chat(t: Test, got: dict, chat: dict) -> None:
    t.need(chat["error"] is None, f"the chat view failed: {chat['error']}")
    t.need(got["text"] == chat["text"], f"output_text {short(got['text'])} != chat view's {short(chat['text'])}")
    t.need(got["reasoning"] == chat["reasoning"],
           f"reasoning summary {short(got['reasoning'])} != chat view's reasoning_content {short(chat['reasoning'])}")
    t.need(got["calls"] == chat["tool_calls"], f"function_call items {short(got['calls'], 300)} != chat view's "
                                               f"tool calls {short(chat['tool_calls'], 300)}")
    status, reason = want_status(chat["finish_reason"])
    t.need(got["status"] == status and got["reason"] == reason,
           f"status {got['status']!r} (incomplete_details.reason {got['reason']!r}) but the chat view's "
           f"finish_reason {chat['finish_reason']!r} means {status!r} ({reason!r})")
    u, cu = got["usage"], chat["usage"]
    if cu is None:
        say("the chat view has no usage: the response's usage must be null")
        t.need(u is None, f"usage {u} invented: the chat view has none")
    elif t.need(u is not None, f"no usage, the chat view has {cu}"):
        for mine, theirs in (("input_tokens", "prompt_tokens"), ("output_tokens", "completion_tokens"),
                             ("total_tokens", "total_tokens")):
            t.need(u[mine] == cu.get(theirs), f"usage.{mine} {u[mine]} != chat view's {theirs} {cu.get(theirs)}")


# ------------------------------------------------------------------ the stream, read once
_STREAM: dict | None = None


def streamed(a) -> dict:
    """One client.responses.stream() run: the raw events, the deltas, the final response."""
    global _STREAM
    if _STREAM is not None:
        return _STREAM
    s: dict[str, Any] = {"raw": [], "types": [], "text": "", "reasoning": "", "args": "", "deltas": 0,
                         "final": None, "final_via": None, "error": None}
    try:
        with client(a).responses.stream(**request(a, a.model)) as stream:
            # The raw events (before the helper's state machine) for the sequence checks.
            raw_stream = getattr(stream, "_raw_stream", None)
            if raw_stream is not None:
                def tap(inner=raw_stream):
                    for ev in inner:
                        s["raw"].append(ev)
                        yield ev
                stream._raw_stream = tap()
            terminal = None
            for ev in stream:
                s["types"].append(ev.type)
                if raw_stream is None:
                    s["raw"].append(ev)
                if ev.type == "response.output_text.delta":
                    s["text"] += ev.delta
                    s["deltas"] += 1
                elif ev.type == "response.refusal.delta":
                    s["text"] += ev.delta
                elif ev.type == "response.reasoning_summary_text.delta":
                    s["reasoning"] += ev.delta
                elif ev.type in TERMINAL:
                    terminal = ev
            if terminal is not None and terminal.type == "response.completed":
                s["final"], s["final_via"] = stream.get_final_response(), "get_final_response()"
            elif terminal is not None:
                # get_final_response() only returns a response.completed response.
                s["final"], s["final_via"] = terminal.response, f"the {terminal.type} event"
            else:
                s["final"], s["final_via"] = stream.get_final_response(), "get_final_response()"
    except Exception as e:  # reported by the tests that read this stream
        s["error"] = e
        print_traceback()
    _STREAM = s
    return s


def check_events(t: Test, raw: list) -> None:
    types = [e.type for e in raw]
    t.need(types[:1] == ["response.created"], f"the first event is {types[:1]}, not response.created")
    seqs = [getattr(e, "sequence_number", None) for e in raw]
    if not t.need(seqs == list(range(len(raw))), "sequence_number is not 0, 1, 2, … without a gap: "
                  f"{short(seqs, 200)}"):
        say(f"event types: {types}")
    terminals = [i for i, x in enumerate(types) if x in TERMINAL]
    t.need(len(terminals) == 1, f"{len(terminals)} terminal events ({[types[i] for i in terminals]}), not 1")
    t.need(bool(terminals) and terminals[-1] == len(types) - 1,
           f"the last event is {types[-1:]}, not a terminal one")
    ids = {e.response.id for e in raw if e.type in LIFECYCLE}
    t.need(len(ids) == 1, f"the lifecycle events carry response ids {sorted(ids)}, not one")


# ------------------------------------------------------------------------------ tests
def t_responses(a, t: Test) -> str:
    s = streamed(a)
    if not t.need(s["error"] is None, f"the stream raised {exc(s['error'])}"):
        return ""
    r = s["final"]
    got = items_of(r)
    say(f"events: {s['types'][:6]}{'…' if len(s['types']) > 6 else ''} ({len(s['types'])}, "
        f"{len(s['raw'])} raw)")
    say(f"final response ({s['final_via']}): {short(r.model_dump(exclude_none=True), 400)}")
    say(f"output_text: {short(got['text'], 200)}")
    if got["reasoning"]:
        say(f"reasoning summary: {short(got['reasoning'], 200)}")
    check_events(t, s["raw"])
    terminal = next((x for x in reversed(s["types"]) if x in TERMINAL), None)
    t.need(terminal == f"response.{got['status']}", f"status {got['status']!r} but the stream ended with {terminal}")
    t.need(s["text"] == got["text"], f"the text deltas {short(s['text'])} != output_text {short(got['text'])}")
    t.need(s["reasoning"] == got["reasoning"],
           f"the reasoning summary deltas {short(s['reasoning'])} != the summary text {short(got['reasoning'])}")
    compare_with_chat(t, got, chat(a, a.model))
    return (f"{r.id}: {s['deltas']} text deltas, {len(got['text'])} chars, reasoning {len(got['reasoning'])} chars, "
            f"{len(got['calls'])} function calls, status {got['status']}"
            + (f" ({got['reason']})" if got["reason"] else "") + f", usage {got['usage']}")


def t_responses_create(a, t: Test) -> str:
    raw = client(a).responses.with_raw_response.create(**request(a, a.model))
    r = raw.parse()
    if not t.need(hasattr(r, "output"), f"the SDK read a {type(r).__name__}, not a Response (HTTP {raw.status_code}, "
                                        f"content-type {raw.headers.get('content-type')!r}): {short(r, 200)}"):
        return ""
    say(f"response: {short(r.model_dump(exclude_none=True), 400)}")
    t.need(r.object == "response", f"object {r.object!r}")
    got = items_of(r)
    s = streamed(a)
    if not t.need(s["error"] is None, f"the stream raised {exc(s['error'])}"):
        return ""
    st = items_of(s["final"])
    t.need(got["text"] == st["text"], f"output_text {short(got['text'])} != streamed {short(st['text'])}")
    t.need((got["status"], got["reason"]) == (st["status"], st["reason"]),
           f"status {got['status']!r} ({got['reason']!r}) != streamed {st['status']!r} ({st['reason']!r})")
    t.need(got["reasoning"] == st["reasoning"],
           f"reasoning summary {short(got['reasoning'])} != streamed {short(st['reasoning'])}")
    t.need(got["calls"] == st["calls"], f"function calls {short(got['calls'], 300)} != streamed {short(st['calls'], 300)}")
    t.need(got["usage"] == st["usage"], f"usage {got['usage']} != streamed {st['usage']}")
    return (f"{r.id}: {len(got['text'])} chars, {got['types']}, status {got['status']}"
            + (f" ({got['reason']})" if got["reason"] else "") + f", usage {got['usage']}")


def t_completions(a, t: Test) -> str:
    text, finish, usage, chunks, usage_at = "", None, None, 0, []
    stream = client(a).completions.create(model=a.model, prompt=a.prompt, max_tokens=a.max_tokens, stream=True,
                                          stream_options={"include_usage": True})
    for chunk in stream:
        chunks += 1
        usage = chunk.usage
        if chunk.usage is not None:
            usage_at.append(chunks - 1)
        for choice in chunk.choices or []:
            if choice.index != 0:
                continue
            text += choice.text or ""
            if choice.finish_reason:
                finish = choice.finish_reason
    cv = chat(a, a.model, tool=False)
    say(f"text: {short(text, 200)}")
    t.need(cv["error"] is None, f"the chat view failed: {cv['error']}")
    t.need(text == cv["text"], f"text {short(text)} != chat view's {short(cv['text'])}")
    t.need(finish == cv["finish_reason"], f"finish_reason {finish!r} != chat view's {cv['finish_reason']!r}")
    u = usage.model_dump() if usage is not None else None
    cu = cv["usage"]
    if cu is None:
        t.need(not usage_at, f"usage in chunks {usage_at} invented: the chat view has none")
    elif t.need(u is not None, f"the last chunk has no usage (usage in chunks {usage_at} of {chunks}), "
                               f"the chat view has {cu}"):
        for k in ("prompt_tokens", "completion_tokens", "total_tokens"):
            t.need(u.get(k) == cu.get(k), f"usage.{k} {u.get(k)} != chat view's {cu.get(k)}")
    counts = "none" if u is None else f"{u['prompt_tokens']}/{u['completion_tokens']}/{u['total_tokens']}"
    return f"{chunks} chunks, {len(text)} chars, finish_reason {finish}, usage {counts}"


def error_report(t: Test, err: BaseException | None, text: str, what: str) -> str:
    """Checks an exception is the SDK's APIError after partial text; returns what happened."""
    name = exc_name(err)
    say(f"{what}: exception {name}: {err}")
    say(f"{what}: partial text {short(text, 200)}")
    if not isinstance(err, openai.APIError) or isinstance(err, openai.APIConnectionError):
        say_traceback(err)
    t.need(isinstance(err, openai.APIError), f"{what}: {name} is not an openai.APIError")
    t.need(not isinstance(err, openai.APIConnectionError), f"{what}: {name}: the connection failed, "
                                                          "no error event was read")
    t.need(text != "", f"{what}: the error came before any text")
    body = getattr(err, "body", None)
    say(f"{what}: error body {short(body, 300)}")
    return f"{what}: {name} after {len(text)} chars ({getattr(err, 'code', None) or short(str(err), 80)})"


def t_error(a, t: Test) -> str:
    cv = chat(a, a.error_model)
    t.need(cv["error"] is not None, f"the chat view of {a.error_model} did not fail ({summary(cv)})")
    code = cv["error"]["code"] if cv["error"] else None
    # Responses: the SDK's APIError, or an `error` event then response.failed.
    text, err, types, failed = "", None, [], None
    try:
        with client(a).responses.stream(**request(a, a.error_model)) as stream:
            for ev in stream:
                types.append(ev.type)
                if ev.type == "response.output_text.delta":
                    text += ev.delta
                elif ev.type == "error":
                    say(f"responses: error event {short(ev.model_dump(exclude_none=True), 300)}")
                elif ev.type == "response.failed":
                    failed = ev.response
    except Exception as e:
        err = e
    say(f"responses: events {types[:5]}…{types[-3:]} ({len(types)})")
    if err is not None:
        parts = [error_report(t, err, text, "responses")]
        body = getattr(err, "body", None)
        t.need(not code or code in json.dumps(body, default=str),
               f"responses: the chat view's error code {code!r} is not in the error body {short(body, 200)}")
    elif t.need("error" in types and types[-1:] == ["response.failed"]
                and types.index("error") < len(types) - 1,
                f"responses: {a.error_model} ended without an exception and without an `error` event then "
                f"response.failed (events end {types[-3:]}, {len(text)} chars)"):
        t.need(text != "", "responses: the error came before any text")
        say(f"responses: response.failed error {short(failed.error.model_dump() if failed.error else None, 300)}")
        parts = [f"responses: error event then response.failed after {len(text)} chars"]
    else:
        parts = []
    # Completions: the SDK's APIError.
    ctext, cerr = "", None
    try:
        for chunk in client(a).completions.create(model=a.error_model, prompt=a.prompt, max_tokens=a.max_tokens,
                                                  stream=True, stream_options={"include_usage": True}):
            for choice in chunk.choices or []:
                if choice.index == 0:
                    ctext += choice.text or ""
    except Exception as e:
        cerr = e
    if t.need(cerr is not None, f"completions: {a.error_model} ended without an exception ({len(ctext)} chars)"):
        parts.append(error_report(t, cerr, ctext, "completions"))
        body = getattr(cerr, "body", None)
        t.need(not code or code in json.dumps(body, default=str),
               f"completions: the chat view's error code {code!r} is not in the error body {short(body, 200)}")
    return "; ".join(parts)


TESTS = {"responses": t_responses, "responses_create": t_responses_create, "completions": t_completions,
         "error": t_error}


if __name__ == "__main__":
    sys.exit(main("responses_check", __doc__, TESTS, banner=lambda: f"openai {openai.__version__}"))
