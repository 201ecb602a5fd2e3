#!/usr/bin/env bash
# Installs what the gateway's end-to-end tests run against: the real MCP servers from npm
# (package-lock.json, `npm ci` into tests/mcp/node_modules) and the MCP Python SDK with pytest
# (requirements.txt, every package pinned with its hash, into tests/mcp/.venv).
# Idempotent: a stamp holds the lockfiles' sha256, so a second run with nothing changed only
# compares two hashes.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"

missing=()
for tool in node npm python3 sha256sum; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]})); then
    echo "tests/mcp/setup.sh: missing ${missing[*]}: the gateway's MCP tests need Node.js 20+ with npm" \
        "and Python 3.10+ with venv (Debian: apt-get install nodejs npm python3 python3-venv)" >&2
    exit 1
fi
if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
    echo "tests/mcp/setup.sh: python3 is $(python3 --version 2>&1); the MCP Python SDK needs 3.10+" >&2
    exit 1
fi

stamp_file=.setup-stamp
wanted="$(cat package.json package-lock.json requirements.txt | sha256sum | cut -d' ' -f1) node $(node --version) $(python3 --version 2>&1)"
if [[ -f $stamp_file && "$(cat "$stamp_file")" == "$wanted" && -d node_modules && -x .venv/bin/python ]]; then
    echo "tests/mcp/setup.sh: up to date"
    exit 0
fi
rm -f "$stamp_file"

echo "tests/mcp/setup.sh: npm ci"
npm ci --no-audit --no-fund --loglevel=error

echo "tests/mcp/setup.sh: python venv"
rm -rf .venv
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-input \
    --require-hashes -r requirements.txt

printf '%s\n' "$wanted" >"$stamp_file"
echo "tests/mcp/setup.sh: ready"
