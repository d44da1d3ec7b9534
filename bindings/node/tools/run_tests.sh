#!/usr/bin/env bash
# bindings/node/tools/run_tests.sh RUNTIME FILE... -- run the binding's
# tests (node:test files) under RUNTIME, `node` or `bun`; ctest calls it.
#
#   node  node --test FILE...
#   bun   bun test FILE... (Bun's runner runs node:test files); the bun
#         binary is $RSN_BUN, else $RSN_NODE_TOOLS/node_modules/.bin/bun.
#         Exit 77 (ctest: skipped) with the reason when there is none.
# When $RSN_NODE_TOOLS lacks bun or tsc, node_tools.sh installs the pinned
# npm packages there first (once per build tree); if npm fails, the Bun run
# and the TypeScript check are skipped with a message, the rest still runs.
#
# Environment (ctest sets it): RSN_NODE_ADDON, the built resonance.node;
# RSN_CLI, the resonance command-line tool; RSN_NODE_TOOLS, where the npm
# tools live.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
RUNTIME=${1:?usage: run_tests.sh node|bun FILE...}
shift
# The npm tools (bun, typescript), installed once into the build tree.
if [ -n "${RSN_NODE_TOOLS:-}" ] && { [ ! -x "$RSN_NODE_TOOLS/node_modules/.bin/bun" ] ||
                                     [ ! -x "$RSN_NODE_TOOLS/node_modules/.bin/tsc" ]; }; then
  bash "$HERE/node_tools.sh" "$RSN_NODE_TOOLS" || true
fi

case $RUNTIME in
  node)
    echo "run_tests: node $(node --version), addon ${RSN_NODE_ADDON:-?}"
    exec node --test "$@"
    ;;
  bun)
    BUN=${RSN_BUN:-}
    if [ -z "$BUN" ] && [ -n "${RSN_NODE_TOOLS:-}" ]; then
      BUN=$RSN_NODE_TOOLS/node_modules/.bin/bun
    fi
    if [ -z "$BUN" ] || ! "$BUN" --version >/dev/null 2>&1; then
      echo "run_tests: SKIPPED under Bun: no bun binary (set RSN_BUN, or let" \
           "bindings/node/tools/node_tools.sh install npm's bun package into \$RSN_NODE_TOOLS)"
      exit 77
    fi
    echo "run_tests: bun $("$BUN" --version), addon ${RSN_NODE_ADDON:-?}"
    exec "$BUN" test --timeout 300000 "$@"
    ;;
  *)
    echo "run_tests: unknown runtime $RUNTIME (node or bun)" >&2
    exit 2
    ;;
esac
