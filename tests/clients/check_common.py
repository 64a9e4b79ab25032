"""What the Python client checks (anthropic_check.py, genai_check.py, responses_check.py) share:
their command line, the test runner (`ok TEST: ...` or `FAIL TEST: ...` per test, a closing
`NAME: N passed, N failed` line, exit status 1 when a test failed), the helpers the tests report
with, and the chat view of each model, read once. Each script holds only its own tests."""
from __future__ import annotations

import argparse
import json
import os
import traceback
from typing import Any, Callable

from chat_view import chat_view, summary

QUIET = False  # --quiet: only the ok/FAIL lines and the closing count


def say(line: str) -> None:
    if not QUIET:
        print(f"    {line}", flush=True)


def print_traceback() -> None:
    """The traceback of the exception being handled, unless --quiet."""
    if not QUIET:
        traceback.print_exc()


class Test:
    """Collects one test's problems: `need` records a failed condition."""

    def __init__(self, name: str):
        self.name = name
        self.problems: list[str] = []

    def need(self, cond: bool, problem: str) -> bool:
        if not cond:
            self.problems.append(problem)
            say(f"problem: {problem}")
        return cond


def short(v: Any, n: int = 120) -> str:
    if isinstance(v, str):
        return repr(v[:n] + ("…" if len(v) > n else ""))
    return json.dumps(v, ensure_ascii=False, default=str)[:n]


def exc_name(e: BaseException) -> str:
    """An exception's class with its module, e.g. anthropic.APIStatusError."""
    return f"{type(e).__module__}.{type(e).__name__}"


def exc(e: BaseException) -> str:
    return f"{exc_name(e)}: {str(e) or repr(e)}"


def say_traceback(e: BaseException) -> None:
    """An exception's traceback, said (indented) unless --quiet: for one the SDK should not raise."""
    say("".join(traceback.format_exception(type(e), e, e.__traceback__)).rstrip())


_CHAT: dict[tuple[str, bool], dict] = {}


def chat(a, model: str, tool: bool | None = None) -> dict:
    """The chat view of `model` (with --tool's tool unless `tool` says otherwise), read once."""
    tool = a.tool if tool is None else tool
    if (model, tool) not in _CHAT:
        _CHAT[model, tool] = chat_view(a.base_url, a.api_key, model, a.prompt, a.max_tokens, tool, a.timeout)
        say(summary(_CHAT[model, tool]) + (" (no tool)" if a.tool and not tool else ""))
    return _CHAT[model, tool]


def main(label: str, doc: str | None, tests: dict[str, Callable[[Any, Test], str]],
         banner: Callable[[], str] | None = None, default_tests: str | None = None) -> int:
    """Parses the checks' command line (--tests defaults to `default_tests`, else all of `tests`,
    in order), prints `banner()` unless --quiet, runs each named test as test(args, Test) -> detail and prints
    `ok NAME: detail` or `FAIL NAME: problems`, then `label: N passed, N failed`. Returns the
    exit status: 1 when a test failed."""
    global QUIET
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("base_url")
    p.add_argument("--model", required=True)
    p.add_argument("--tests", default=default_tests or ",".join(tests))
    p.add_argument("--max-tokens", type=int, default=256)
    p.add_argument("--error-model", default="demo/broken")
    p.add_argument("--api-key", default=os.environ.get("PROXY_API_KEY") or "sk-ci")
    p.add_argument("--prompt", default="Say hello in one short sentence.")
    p.add_argument("--tool", action="store_true")
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args()
    QUIET = a.quiet
    names = [x.strip() for x in a.tests.split(",") if x.strip()]
    unknown = [x for x in names if x not in tests]
    if unknown:
        p.error(f"unknown tests {unknown}: choose from {','.join(tests)}")
    if banner is not None and not QUIET:
        print(banner(), flush=True)
    passed = failed = 0
    for name in names:
        t = Test(name)
        if not QUIET:
            print(f"--- {name} ({a.model if name != 'error' else a.error_model})", flush=True)
        try:
            detail = tests[name](a, t)
        except Exception as e:
            detail = ""
            t.problems.append(exc(e))
            print_traceback()
        if t.problems:
            failed += 1
            print(f"FAIL {name}: {'; '.join(t.problems)}", flush=True)
        else:
            passed += 1
            print(f"ok {name}: {detail}", flush=True)
    print(f"{label}: {passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0
