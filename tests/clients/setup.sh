#!/usr/bin/env bash
# Installs the official Anthropic and Google GenAI SDKs the client checks in this folder use.
# Idempotent: packages already installed at the pinned versions are not installed again.
#
#   Python: anthropic, google-genai -> ${ORACLES_HOME:-$HOME/.cache/sse-oracles}/venv (it has openai)
#   Node:   @anthropic-ai/sdk, @google/genai -> ${CLIENT_SDKS:-$HOME/.cache/client-sdks}/node_modules
#
# Needs python3 (with venv) and node >= 20 with npm.
set -euo pipefail

ANTHROPIC_PY_VERSION=2.16.0
GOOGLE_GENAI_PY_VERSION=3.6.1
ANTHROPIC_NODE_VERSION=1.16.0
GOOGLE_GENAI_NODE_VERSION=3.3.0

OH="${ORACLES_HOME:-$HOME/.cache/sse-oracles}"
SDKS="${CLIENT_SDKS:-$HOME/.cache/client-sdks}"
VENV="$OH/venv"

log() { printf '[clients/setup] %s\n' "$*" >&2; }

if [ ! -x "$VENV/bin/python" ]; then
  log "python venv $VENV"
  mkdir -p "$OH"
  python3 -m venv "$VENV"
fi
PY_PKGS=("anthropic==$ANTHROPIC_PY_VERSION" "google-genai==$GOOGLE_GENAI_PY_VERSION")
if ! "$VENV/bin/python" - "${PY_PKGS[@]}" <<'PYEOF' 2>/dev/null; then
import sys
from importlib.metadata import version
sys.exit(any(version(n) != v for n, v in (a.split("==") for a in sys.argv[1:])))
PYEOF
  log "pip ${PY_PKGS[*]} -> $VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "${PY_PKGS[@]}"
fi

npm_version() {  # installed version of an npm package in $SDKS, or nothing
  node -e 'try { console.log(require(process.argv[1]).version) } catch {}' "$SDKS/node_modules/$1/package.json"
}
mkdir -p "$SDKS"
cat > "$SDKS/package.json.new" <<JSON
{
  "name": "client-sdks",
  "private": true,
  "dependencies": {
    "@anthropic-ai/sdk": "$ANTHROPIC_NODE_VERSION",
    "@google/genai": "$GOOGLE_GENAI_NODE_VERSION"
  }
}
JSON
if cmp -s "$SDKS/package.json.new" "$SDKS/package.json"; then rm "$SDKS/package.json.new"; else mv "$SDKS/package.json.new" "$SDKS/package.json"; fi
if [ "$(npm_version @anthropic-ai/sdk)" != "$ANTHROPIC_NODE_VERSION" ] \
   || [ "$(npm_version @google/genai)" != "$GOOGLE_GENAI_NODE_VERSION" ]; then
  log "npm @anthropic-ai/sdk@$ANTHROPIC_NODE_VERSION @google/genai@$GOOGLE_GENAI_NODE_VERSION -> $SDKS/node_modules"
  (cd "$SDKS" && npm install --no-audit --no-fund --loglevel=error)
fi

"$VENV/bin/python" - <<'PYEOF'
from importlib.metadata import version
for n in ("anthropic", "google-genai", "openai"):
    try:
        print(f"python {n}=={version(n)}")
    except Exception:
        print(f"python {n}: not installed")
PYEOF
echo "node @anthropic-ai/sdk@$(npm_version @anthropic-ai/sdk) @google/genai@$(npm_version @google/genai) in $SDKS/node_modules"
