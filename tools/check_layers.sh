#!/usr/bin/env bash
# tools/check_layers.sh -- fail when an #include crosses a layer upward.
#
# The layers (DESIGN.md section 2), bottom first; each may include its own
# headers, the public headers (engine/include/) and the layers listed:
#
#   common/            -
#   kernels/           common
#   storage/           common
#   engine/            kernels, storage, common
#   embed/             itself and embed/include (the embedding client, a
#                      library beside the core: public headers only)
#   bench/lib/         itself (the bench library)
#   bench/             bench/lib, embed/include (and kernels/, common/ for the
#                      google-benchmark harness, which drives the kernels
#                      directly: bench/kernel_bench.cc)
#   service/           embed/include (`resonance serve`: public headers only)
#   tools/             bench/lib, embed/include, service
#   bindings/node/     itself (the Node-API addon: public headers only)
#   bindings/          public headers only (the other bindings' C: test helpers)
#   tests/             anything (tests may use internal headers)
#
# The build enforces the same through each target's include path; this
# check also catches a relative include ("../engine/db_int.h") and names
# the file and line.  Usage: tools/check_layers.sh [--self-test] [ROOT]
set -euo pipefail

usage() {
  sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'
}

declare -A ALLOW=(
  [engine/include]="engine/include"
  [embed/include]="embed/include engine/include"
  [embed]="embed embed/include engine/include"
  [common]="common engine/include"
  [kernels]="kernels common engine/include"
  [storage]="storage common engine/include"
  [engine]="engine engine/include kernels storage common"
  [bench/lib]="bench/lib engine/include"
  [bench]="bench bench/lib engine/include embed/include"
  [service]="service engine/include embed/include"
  [tools]="tools bench/lib service engine/include embed/include"
  [bindings/node]="bindings/node engine/include"
  [bindings]="engine/include"
)
# Files allowed more than their layer.
declare -A ALLOW_FILE=(
  [bench/kernel_bench.cc]="bench engine/include kernels common"
)
LAYERS=(engine/include embed/include common kernels storage engine embed bench/lib bench service tools
        bindings/node bindings)

# The layer a path belongs to, or "" (tests/ and anything else: unchecked).
layer_of() {
  local p=$1
  case "$p" in
    engine/include/*) echo engine/include ;;
    embed/include/*) echo embed/include ;;
    common/*) echo common ;;
    kernels/*) echo kernels ;;
    storage/*) echo storage ;;
    engine/*) echo engine ;;
    embed/*) echo embed ;;
    bench/lib/*) echo bench/lib ;;
    bench/*) echo bench ;;
    service/*) echo service ;;
    tools/*) echo tools ;;
    bindings/node/*) echo bindings/node ;;
    bindings/*) echo bindings ;;
    *) echo "" ;;
  esac
}

# Resolve a quoted include of file F to a repository path, or "" when it is
# not one of ours (a system or package header).
resolve() {
  local from=$1 inc=$2 dir cand l
  dir=$(dirname "$from")
  cand=$(realpath -m --relative-to=. "$dir/$inc")
  if [[ -f $cand ]]; then echo "$cand"; return; fi
  for l in "${LAYERS[@]}"; do
    if [[ -f $l/$inc ]]; then echo "$l/$inc"; return; fi
  done
  echo ""
}

check_tree() {
  local bad=0 f layer allowed line num inc target tl
  while IFS= read -r f; do
    layer=$(layer_of "$f")
    [[ -z $layer ]] && continue
    allowed=${ALLOW_FILE[$f]:-${ALLOW[$layer]}}
    while IFS= read -r line; do
      num=${line%%:*}
      inc=$(sed -E 's/^[0-9]+:[[:space:]]*#[[:space:]]*include[[:space:]]*"([^"]+)".*/\1/' <<<"$line")
      target=$(resolve "$f" "$inc")
      [[ -z $target ]] && continue
      tl=$(layer_of "$target")
      [[ -z $tl ]] && tl=$(dirname "$target")
      if [[ " $allowed " != *" $tl "* ]]; then
        echo "layer violation: $f:$num includes \"$inc\" ($tl/), but $layer/ may include only: $allowed" >&2
        bad=1
      fi
    done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" || true)
  done < <(find common kernels storage engine embed bench service tools bindings -type f \
             \( -name '*.c' -o -name '*.h' -o -name '*.cc' \) 2>/dev/null | sort)
  return $bad
}

self_test() {
  # A deliberate upward include in a scratch copy must be caught.
  local tmp caught=1
  tmp=$(mktemp -d)
  cp -r common kernels storage engine embed bench service tools "$tmp"/
  if [[ -d bindings ]]; then cp -r bindings "$tmp"/; fi
  printf '#include "db_int.h"\n' >> "$tmp/kernels/kern.h"
  if (cd "$tmp" && check_tree 2>/dev/null); then caught=0; fi
  rm -rf "$tmp"
  if (( ! caught )); then
    echo "check_layers self-test: an upward include (kernels -> engine) was NOT caught" >&2
    return 1
  fi
  echo "check_layers self-test: an upward include (kernels -> engine) is caught"
  if [[ -d bindings/node ]]; then # and one from the addon into the engine's internals
    tmp=$(mktemp -d)
    cp -r common kernels storage engine embed bench service tools bindings "$tmp"/
    printf '#include "db_int.h"\n' >> "$tmp/bindings/node/src/addon.h"
    caught=1
    if (cd "$tmp" && check_tree 2>/dev/null); then caught=0; fi
    rm -rf "$tmp"
    if (( ! caught )); then
      echo "check_layers self-test: an upward include (bindings/node -> engine) was NOT caught" >&2
      return 1
    fi
    echo "check_layers self-test: an upward include (bindings/node -> engine) is caught"
  fi
}

main() {
  local self=0
  while [[ $# -gt 0 ]]; do
    case $1 in
      -h|--help) usage; exit 0 ;;
      --self-test) self=1; shift ;;
      -*) echo "check_layers: unknown option $1" >&2; usage >&2; exit 2 ;;
      *) break ;;
    esac
  done
  cd "${1:-$(dirname "$0")/..}"
  if (( self )); then self_test; fi
  if check_tree; then
    echo "check_layers: every #include points down (common <- kernels, storage <- engine <- embed, bench/lib <- bench, tools; engine <- service <- tools; engine/include <- bindings/node)"
  else
    exit 1
  fi
}

main "$@"
