#!/usr/bin/env python3
"""Writes the seed corpus of the `dialects` fuzz target: every fixture stream once per dialect.

usage: seed_corpus.py FIXTURES_DIR OUT_DIR [render]

The target reads its first byte as the selector: `% 8` picks the dialect (Passthrough,
OpenAiCompatible, AnthropicMessages, Gemini, Cohere, OpenAiResponses, Ollama over NDJSON,
Bedrock over AWS event-stream), `>> 3` the chunk size.
"""
import os
import sys

src, dest = sys.argv[1], sys.argv[2]
if len(sys.argv) > 3 and sys.argv[3] == "render":
    # The `render` target: OpenAI-compatible chat captures, once per client API (first byte
    # `% 5`), cut at a few places (second byte).
    os.makedirs(dest, exist_ok=True)
    count = 0
    for folder in ("openai", "deepseek", "groq", "mistral", "openrouter", "vllm", "llamacpp"):
        for name in sorted(os.listdir(os.path.join(src, folder))):
            if not name.endswith(".sse") or "audio" in name or "responses" in name:
                continue
            data = open(os.path.join(src, folder, name), "rb").read()
            for api in range(5):
                with open(os.path.join(dest, f"{folder}_{name}.{api}"), "wb") as f:
                    f.write(bytes([api, (count * 7 + api * 3) % 256]) + data)
            count += 1
    print(f"wrote {count * 5} seeds to {dest}", file=sys.stderr)
    sys.exit(0)
os.makedirs(dest, exist_ok=True)
count = 0
for root, _, files in os.walk(src):
    for name in sorted(files):
        if not name.endswith((".sse", ".ndjson", ".bin")):
            continue
        data = open(os.path.join(root, name), "rb").read()
        for dialect in range(8):
            selector = (dialect + 8 * (count % 8)) % 256
            with open(os.path.join(dest, f"{name}.{dialect}"), "wb") as f:
                f.write(bytes([selector]) + data)
        count += 1
print(f"wrote {count * 8} seeds to {dest}", file=sys.stderr)
