#!/usr/bin/env bash
# bindings/node/tools/node_tools.sh DIR -- install the pinned Bun and
# TypeScript npm packages into DIR (a build tree's node-tools/) so that the
# binding's tests can run under Bun and type-check the declarations.
# Idempotent: a package already at its pinned version is not fetched again.
# Exit 0 when both are there, 1 when npm could not install one (offline,
# registry unreachable); never touches anything outside DIR.
#
# Bun comes from npm's `bun` package: its binary is in the optional
# dependency for the platform (@oven/bun-linux-x64 here), which the
# package's postinstall links to node_modules/.bin/bun.
set -euo pipefail
BUN_VERSION=1.4.5
TS_VERSION=5.9.3
DIR=${1:?usage: node_tools.sh DIR}
mkdir -p "$DIR"
cd "$DIR"
[ -f package.json ] || printf '{"name":"rsn-node-tools","private":true}\n' > package.json

have() { # package version: installed at exactly that version?
  [ -f "node_modules/$1/package.json" ] &&
    [ "$(node -p "require('./node_modules/$1/package.json').version")" = "$2" ]
}

want=()
have bun "$BUN_VERSION" && [ -x node_modules/.bin/bun ] || want+=("bun@$BUN_VERSION")
have typescript "$TS_VERSION" || want+=("typescript@$TS_VERSION")
if [ ${#want[@]} -eq 0 ]; then
  echo "node_tools: bun $BUN_VERSION and typescript $TS_VERSION already in $DIR"
  exit 0
fi
# An install that failed (offline, registry unreachable) is not retried by
# every test run: remove $DIR/npm-install.failed to try again.
if [ -f npm-install.failed ] && [ -z "${RSN_NODE_TOOLS_RETRY:-}" ]; then
  echo "node_tools: an earlier npm install failed ($DIR/npm-install.failed); remove it to retry" >&2
  exit 1
fi
if ! command -v npm >/dev/null; then
  echo "node_tools: npm not found; cannot install ${want[*]}" >&2
  exit 1
fi
echo "node_tools: npm install ${want[*]} into $DIR"
if ! npm install --no-audit --no-fund --save-exact --fetch-retries 1 --fetch-timeout 60000 \
       "${want[@]}" >npm-install.log 2>&1; then
  echo "node_tools: npm install failed (see $DIR/npm-install.log):" >&2
  tail -5 npm-install.log >&2
  cp npm-install.log npm-install.failed
  exit 1
fi
if ! node_modules/.bin/bun --version >/dev/null 2>&1; then
  echo "node_tools: bun $BUN_VERSION installed but does not run here" >&2
  exit 1
fi
rm -f npm-install.failed
echo "node_tools: bun $(node_modules/.bin/bun --version), typescript $(node -p "require('./node_modules/typescript/package.json').version")"
