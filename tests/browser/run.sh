#!/usr/bin/env bash
# The live view in a real browser (called by .ci/run): headless Chromium from Debian's
# `chromium` package, driven by playwright-core (installed from npm into target/browser/, with
# no browser download). See check.mjs for what it checks. Screenshots go to target/browser/.
#
# Installs chromium with apt-get when it is missing and this user may (root). Skipped (exit 0)
# when node, npm or chromium cannot be had (no network, no root). Builds target/debug/sluice
# when it is missing (SLUICE_BIN names another binary).
set -euo pipefail
cd "$(dirname "$0")/../.."

for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "browser: skipped ($tool is not installed)"
    exit 0
  fi
done

chromium="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$chromium" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "browser: installing Debian's chromium"
  (timeout 600 apt-get update -qq && DEBIAN_FRONTEND=noninteractive timeout 900 \
    apt-get install -y -qq chromium) >/dev/null 2>&1 || true
fi
if [ ! -x "$chromium" ]; then
  echo "browser: skipped (no chromium at $chromium)"
  exit 0
fi

prefix=target/browser
version="${PLAYWRIGHT_CORE_VERSION:-1.64.1}"
if [ ! -f "$prefix/node_modules/playwright-core/package.json" ]; then
  mkdir -p "$prefix"
  echo "browser: installing playwright-core@$version into $prefix"
  if ! timeout 300 npm install --prefix "$prefix" --no-audit --no-fund --silent \
      "playwright-core@$version" >/dev/null 2>&1; then
    echo "browser: skipped (npm could not install playwright-core)"
    exit 0
  fi
fi

sluice="${SLUICE_BIN:-target/debug/sluice}"
if [ ! -x "$sluice" ]; then
  echo "browser: building $sluice"
  cargo build --quiet
fi
sluice="$(cd "$(dirname "$sluice")" && pwd)/$(basename "$sluice")"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
shots="$prefix/screenshots"
mkdir -p "$shots"
CHROMIUM="$chromium" timeout 600 node tests/browser/check.mjs "$sluice" "$work" "$shots" "$(pwd)/$prefix"
echo "browser: screenshots in $shots"
