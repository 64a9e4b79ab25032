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
    background        (not in the default list: needs a proxy started with --resumable, and a
                      deterministic model such as the demo's) responses.create(stream=True,
                      background=True): FIRST_EVENTS (6) events, then the stream is closed (a
                      client disconnect); responses.retrieve(id, stream=True, starting_after=the
                      last sequence_number) reads the rest: sequence_number runs on without a gap
                      or a duplicate to one terminal event, the text (and event types) of both
                      parts are those of the same request streamed uninterrupted, not in the
                      background; the id is resp_ + 32 hex digits; responses.retrieve(id): that
                      status, output_text and usage, background true. Then demo/slow
                      (CANCEL_MODEL, hard-coded) in the background: 2 events, responses.cancel(id)
                      answers status cancelled; the stream still open and retrieve(id,
                      stream=True) each end with the `error` event stream_cancelled (the SDK
                      raises its APIError: the event has an `error` object; a yielded error event
                      with that code is accepted too), no terminal event; retrieve(id) then says
                      cancelled, and a second cancel() too
  --tool    declare a get_weather function tool in the Responses and chat requests (completions
            has no tools: its chat view has none either)

Prints `ok TEST: ...` or `FAIL TEST: ...` per test and a closing `N passed, N failed` line;
exit status 1 when a test failed. Tested with openai 3.52.0.
"""
from __future__ import annotations

import json
import os
import re
import sys
import time
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


# --------------------------------------------------------------- background responses
CANCEL_MODEL = "demo/slow"  # the cancel part: a reply long and slow enough to cancel (the demo's)
FIRST_EVENTS = 6  # events read before the disconnect: on the demo, created, in_progress, the
#                   item and part added, then two text deltas
CANCEL_EVENTS = 2  # events read before the cancel
ID = re.compile(r"resp_[0-9a-f]{32}")


def text_of(events: list) -> str:
    return "".join(e.delta for e in events if e.type in ("response.output_text.delta", "response.refusal.delta"))


def seqs_of(events: list) -> list:
    return [getattr(e, "sequence_number", None) for e in events]


def t_background(a, t: Test) -> str:
    c = client(a)
    # The same request, uninterrupted and not in the background: the text to get back.
    with c.responses.create(**request(a, a.model), stream=True) as s:
        ref = list(s)
    ref_types = [e.type for e in ref]
    ref_end = ref[-1] if ref and ref[-1].type in TERMINAL else None
    if not t.need(ref_end is not None, f"the uninterrupted stream ends with {ref_types[-1:]}, not a terminal event"):
        return ""
    ref_text = text_of(ref)
    say(f"uninterrupted: {len(ref)} events, {ref_end.type}, text {short(ref_text, 80)}")

    # In the background: FIRST_EVENTS events, then the client goes (the SDK closes the response).
    s = c.responses.create(**request(a, a.model), stream=True, background=True)
    first: list = []
    try:
        while len(first) < FIRST_EVENTS:
            first.append(next(s))
    except StopIteration:
        pass
    finally:
        s.close()
    t.need(s.response.is_closed, "the first stream's response is not closed after close()")
    types = [e.type for e in first]
    if not t.need(types[:1] == ["response.created"], f"the first event is {types[:1]}, not response.created"):
        return ""
    rid = first[0].response.id
    last = first[-1].sequence_number
    say(f"background {rid}: read {types}, sequence_number {seqs_of(first)}, then closed the stream")
    t.need(ID.fullmatch(rid or "") is not None, f"response.created's id {rid!r} is not resp_ and 32 hex digits")
    t.need(seqs_of(first) == list(range(len(first))), f"sequence_number {seqs_of(first)}, not 0, 1, 2, …")
    t.need(not any(x in TERMINAL for x in types), f"the reply ended within {FIRST_EVENTS} events ({types}): "
                                                  "nothing left to resume")

    # The rest, read back after the last sequence_number the client had.
    with c.responses.retrieve(rid, stream=True, starting_after=last) as r:
        rest = list(r)
    rest_types = [e.type for e in rest]
    say(f"retrieve(stream=True, starting_after={last}): {len(rest)} events, sequence_number "
        f"{short(seqs_of(rest)[:3], 40)}…{seqs_of(rest)[-1:]}, last {rest_types[-1:]}")
    t.need(seqs_of(rest) == list(range(last + 1, last + 1 + len(rest))),
           f"the resumed sequence_number {short(seqs_of(rest), 200)} does not run on from {last} without a gap "
           "or a duplicate")
    both = first + rest
    both_types = types + rest_types
    terminals = [x for x in both_types if x in TERMINAL]
    t.need(len(terminals) == 1 and both_types[-1] in TERMINAL,
           f"{len(terminals)} terminal events ({terminals}), the last event {both_types[-1:]}: not one terminal, last")
    t.need("error" not in both_types, f"an error event: {[e for e in both if e.type == 'error'][:1]}")
    ids = {e.response.id for e in both if e.type in LIFECYCLE}
    t.need(ids == {rid}, f"the lifecycle events carry response ids {sorted(ids)}, not {rid}")
    text = text_of(both)
    t.need(text_of(first) != "" and text_of(rest) != "",
           f"the text was not split by the disconnect ({len(text_of(first))} chars before, "
           f"{len(text_of(rest))} after)")
    t.need(text == ref_text, f"the text before and after the disconnect {short(text)} != the uninterrupted "
                             f"stream's {short(ref_text)}")
    t.need(both_types == ref_types, f"the event types {short(both_types, 200)} != the uninterrupted stream's "
                                    f"{short(ref_types, 200)}")
    end = both[-1] if both_types[-1:] and both_types[-1] in TERMINAL else None

    # The response, not streamed: final.
    final = c.responses.retrieve(rid)
    say(f"retrieve(): {short(final.model_dump(exclude_none=True), 300)}")
    t.need(final.id == rid, f"retrieve()'s id {final.id!r} != {rid!r}")
    status = end.type.removeprefix("response.") if end is not None else None
    t.need(final.status == status == ref_end.response.status,
           f"retrieve()'s status {final.status!r}, the stream's terminal event {end.type if end else None}, "
           f"the uninterrupted stream's {ref_end.response.status!r}")
    t.need(final.output_text == ref_text, f"retrieve()'s output_text {short(final.output_text)} != {short(ref_text)}")
    t.need(final.background is True, f"retrieve()'s background is {final.background!r}, not true")
    t.need(usage_of(final.usage) == usage_of(ref_end.response.usage),
           f"retrieve()'s usage {usage_of(final.usage)} != the uninterrupted stream's "
           f"{usage_of(ref_end.response.usage)}")
    parts = [f"{rid}: {len(first)} events, disconnect, {len(rest)} resumed after {last} ({len(text)} chars, "
             f"{final.status})"]

    # Cancelled: CANCEL_MODEL in the background, CANCEL_EVENTS events, then cancel() with the
    # stream still open.
    s = c.responses.create(**request(a, CANCEL_MODEL), stream=True, background=True)
    had = [next(s) for _ in range(CANCEL_EVENTS)]
    cid = had[0].response.id if had[0].type == "response.created" else None
    if not t.need(cid is not None, f"{CANCEL_MODEL}: the first event is {had[0].type}, not response.created"):
        s.close()
        return "; ".join(parts)
    asked = time.monotonic()
    cancelled = c.responses.cancel(cid)
    say(f"cancel({cid}): {short(cancelled.model_dump(exclude_none=True), 300)}")
    t.need(cancelled.id == cid, f"cancel()'s id {cancelled.id!r} != {cid!r}")
    t.need(cancelled.status == "cancelled", f"cancel()'s status {cancelled.status!r}, not 'cancelled'")
    # The stream that was open, and the stream read again: each ends with the `error` event
    # stream_cancelled (the SDK raises its APIError: the event's data has an `error` object), no
    # terminal event.
    open_rest, open_err = [], None
    try:
        for ev in s:
            open_rest.append(ev)
    except Exception as e:
        open_err = e
    finally:
        s.close()
    say(f"the open stream ended {time.monotonic() - asked:.2f} s after cancel() was called")
    again, again_err = [], None
    try:
        with c.responses.retrieve(cid, stream=True, starting_after=had[-1].sequence_number) as r:
            for ev in r:
                again.append(ev)
    except Exception as e:
        again_err = e
    for what, events, err in (("the open stream", had + open_rest, open_err),
                              ("retrieve(stream=True)", had + again, again_err)):
        types = [e.type for e in events]
        say(f"{what}: {len(events)} events, ends {types[-2:]}"
            + (f" {short(events[-1].model_dump(exclude_none=True), 200)}" if events else "")
            + (f", raised {exc(err)}" if err is not None else ""))
        if err is not None:
            t.need(isinstance(err, openai.APIError) and not isinstance(err, openai.APIConnectionError)
                   and "stream_cancelled" in json.dumps(getattr(err, "body", None), default=str),
                   f"{what} raised {exc(err)} (body {short(getattr(err, 'body', None), 200)}), not the SDK's "
                   "APIError for stream_cancelled")
        else:
            t.need(types[-1:] == ["error"] and getattr(events[-1], "code", None) == "stream_cancelled",
                   f"{what} ends with {short(events[-1].model_dump(exclude_none=True) if events else None, 200)}, "
                   "not an error event with code stream_cancelled")
        t.need(seqs_of(events) == list(range(len(events))), f"{what}: sequence_number {short(seqs_of(events), 200)}, "
                                                            "not 0, 1, 2, …")
        t.need(not any(x in TERMINAL for x in types), f"{what}: a terminal event after the cancel: {types[-3:]}")
    gone = c.responses.retrieve(cid)
    t.need(gone.status == "cancelled", f"retrieve() after the cancel: status {gone.status!r}, not 'cancelled'")
    streamed_text = text_of(had + again)
    t.need(gone.output_text == streamed_text, f"retrieve() after the cancel: output_text {short(gone.output_text)} "
                                              f"!= streamed {short(streamed_text)}")
    t.need(c.responses.cancel(cid).status == "cancelled", "cancel() again: not 'cancelled'")
    end_event = again[-1] if again else None
    ending = (f"raised {exc_name(again_err)} ({getattr(again_err, 'code', None)})" if again_err is not None
              else f"ended with {getattr(end_event, 'type', None)} ({getattr(end_event, 'code', None)})")
    parts.append(f"{cid} ({CANCEL_MODEL}): cancelled after {CANCEL_EVENTS} events; read again, {len(again)} events, "
                 f"then the SDK {ending}; {len(gone.output_text)} chars")
    return "; ".join(parts)


TESTS = {"responses": t_responses, "responses_create": t_responses_create, "completions": t_completions,
         "error": t_error, "background": t_background}
DEFAULT_TESTS = "responses,responses_create,completions,error"


if __name__ == "__main__":
    sys.exit(main("responses_check", __doc__, TESTS, banner=lambda: f"openai {openai.__version__}",
                  default_tests=DEFAULT_TESTS))
