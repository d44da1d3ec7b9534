#!/usr/bin/env bash
# install_test.sh BUILD_DIR EXTERNAL_SRC -- install the built tree into a
# temporary prefix, then build a tiny user program against it two ways
# (pkg-config, and CMake's find_package) and run both.
set -euo pipefail
build=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
libdir=$(ls -d "$tmp"/prefix/lib*/ | head -n 1)
export PKG_CONFIG_PATH="$libdir/pkgconfig"
export LD_LIBRARY_PATH="$libdir"

echo "== pkg-config: $(pkg-config --cflags --libs resonance)"
cc -std=c11 -Wall -Werror "$src/hello.c" -o "$tmp/hello_pc" \
   $(pkg-config --cflags --libs resonance)
out=$("$tmp/hello_pc" "$tmp/pc.db")
echo "$out"
grep -q '^best=b title=second count=2' <<<"$out"

echo "== pkg-config: $(pkg-config --cflags --libs resonance_embed)"
cc -std=c11 -Wall -Werror "$src/hello_embed.c" -o "$tmp/hello_embed" \
   $(pkg-config --cflags --libs resonance_embed)
out=$("$tmp/hello_embed")
echo "$out"
grep -q '^provider=openai open=E_INVAL' <<<"$out"

echo "== find_package(resonance)"
cmake -S "$src" -B "$tmp/ext" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/ext" >/dev/null
out=$("$tmp/ext/hello_cmake" "$tmp/cm.db")
echo "$out"
grep -q '^best=b title=second count=2' <<<"$out"

test -x "$tmp/prefix/bin/resonance"
"$tmp/prefix/bin/resonance" --version
echo "install test passed"
