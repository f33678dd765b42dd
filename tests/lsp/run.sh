#!/usr/bin/env bash
# Editors (called by .ci/run): VS Code's YAML language server, given the schema that
# `sluice schema` prints, must underline a broken workflow's mistakes where they are
# (tests/lsp/broken.yaml, expected diagnostics in broken.expected.json).
#
# Installs yaml-language-server from npm into target/lsp/ (once; kept between runs), starts
# it over stdio from check.mjs and kills it after LSP_TIMEOUT_MS (30 s by default) at the
# latest. Skipped (exit 0) when node or npm is missing, or when npm cannot install the
# server (no network). Builds nothing unless target/debug/sluice is missing (set
# SLUICE_BIN to use another binary).
set -euo pipefail
cd "$(dirname "$0")/../.."

for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "lsp: skipped ($tool is not installed)"
    exit 0
  fi
done

prefix=target/lsp
server="$prefix/node_modules/yaml-language-server/bin/yaml-language-server"
version="${YAML_LANGUAGE_SERVER_VERSION:-1.25.0}"
if [ ! -f "$server" ]; then
  mkdir -p "$prefix"
  echo "lsp: installing yaml-language-server@$version into $prefix"
  if ! timeout 300 npm install --prefix "$prefix" --no-audit --no-fund --silent \
      "yaml-language-server@$version" >/dev/null 2>&1; then
    echo "lsp: skipped (npm could not install yaml-language-server)"
    exit 0
  fi
fi

sluice="${SLUICE_BIN:-target/debug/sluice}"
if [ ! -x "$sluice" ]; then
  echo "lsp: building $sluice"
  cargo build --quiet
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$sluice" schema > "$work/sluice.schema.json"

# The node script kills the server itself; the outer timeout is the last resort.
timeout 60 node tests/lsp/check.mjs "$server" "$work/sluice.schema.json" \
  tests/lsp/broken.yaml tests/lsp/broken.expected.json
echo "lsp: ok"
