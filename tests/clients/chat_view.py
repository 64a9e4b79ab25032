"""The OpenAI chat view of a model through the proxy, read with the official `openai` SDK: the
reference the Anthropic and Gemini client checks compare against (same proxy, same model, same
prompt). Shared by the *_check.py scripts (check_common.chat reads it once a model)."""
from __future__ import annotations

import json
from typing import Any

import openai
from openai import OpenAI

# A tool both APIs declare when a check runs with --tool.
TOOL_NAME = "get_weather"
TOOL_DESCRIPTION = "The current weather in a city."
TOOL_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string", "description": "The city, e.g. Paris"}},
    "required": ["city"],
}


def parse_args_json(raw: Any) -> Any:
    """Tool arguments as JSON values (a string is parsed; unparsable text stays a string)."""
    if isinstance(raw, str):
        try:
            return json.loads(raw) if raw.strip() else {}
        except ValueError:
            return raw
    return raw if raw is not None else {}


def chat_view(base_url: str, api_key: str, model: str, prompt: str, max_tokens: int,
              tool: bool = False, timeout: float = 60.0) -> dict:
    """Streams `model` through `/v1/chat/completions` and returns what the SDK read of choice 0:
    text (content, and refusal: the other APIs have no refusal text of their own), reasoning (delta.reasoning_content), tool_calls [{name, arguments}], finish_reason,
    usage (dict or None), error (None, or {type, message, body, code} when the stream failed:
    `partial` text is what came before it), chunks."""
    client = OpenAI(base_url=base_url.rstrip("/") + "/v1", api_key=api_key, timeout=timeout, max_retries=0)
    kwargs: dict[str, Any] = {}
    if tool:
        kwargs["tools"] = [{"type": "function", "function": {
            "name": TOOL_NAME, "description": TOOL_DESCRIPTION, "parameters": TOOL_SCHEMA}}]
    view: dict[str, Any] = {"text": "", "reasoning": "", "tool_calls": [], "finish_reason": None,
                            "usage": None, "error": None, "chunks": 0}
    calls: dict[int, dict] = {}
    try:
        stream = client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": prompt}], max_tokens=max_tokens,
            stream=True, stream_options={"include_usage": True}, **kwargs)
        for chunk in stream:
            view["chunks"] += 1
            if chunk.usage is not None:
                view["usage"] = chunk.usage.model_dump()
            for choice in chunk.choices or []:
                if choice.index != 0:  # n=1 was asked for: a stray choice is not the reply
                    continue
                delta = choice.delta
                if delta is not None:
                    # An OpenAI refusal (delta.refusal) is the reply's text in the other APIs.
                    view["text"] += (delta.content or "") + (getattr(delta, "refusal", None) or "")
                    extra = delta.model_extra or {}
                    reasoning = extra.get("reasoning_content")
                    if reasoning is None:
                        reasoning = extra.get("reasoning")
                    if isinstance(reasoning, str):
                        view["reasoning"] += reasoning
                    for tc in delta.tool_calls or []:
                        call = calls.setdefault(tc.index, {"name": "", "arguments": ""})
                        if tc.function is not None:
                            call["name"] += tc.function.name or ""
                            call["arguments"] += tc.function.arguments or ""
                if choice.finish_reason:
                    view["finish_reason"] = choice.finish_reason
    except openai.APIError as e:
        body = getattr(e, "body", None)
        code = body.get("code") if isinstance(body, dict) else None
        view["error"] = {"type": type(e).__name__, "message": str(e), "body": body, "code": code}
    view["tool_calls"] = [{"name": c["name"], "arguments": parse_args_json(c["arguments"])}
                          for _, c in sorted(calls.items())]
    return view


def summary(view: dict) -> str:
    u = view["usage"]
    usage = "none" if u is None else f"{u.get('prompt_tokens')}/{u.get('completion_tokens')}/{u.get('total_tokens')}"
    return (f"chat view: {len(view['text'])} chars, reasoning {len(view['reasoning'])} chars, "
            f"{len(view['tool_calls'])} tool calls, finish_reason {view['finish_reason']}, usage {usage}"
            + (f", error {view['error']['code'] or view['error']['type']}" if view["error"] else ""))
