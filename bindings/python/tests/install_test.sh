#!/usr/bin/env bash
# install_test.sh SRC BUILD_DIR LIB [PYTHON] -- install the Python binding the
# way its README says (a venv with the system's site packages; pip with no
# build isolation, no dependencies, no index: offline, Debian's pip and
# setuptools), then import it and find libresonance three ways:
#   1. $RESONANCE_LIB;
#   2. under the installation prefix (the C library installed into the venv
#      with `cmake --install --prefix`), with no variable set;
#   3. beside the package (a copy in site-packages/resonance/), which wins
#      over the prefix;
# and check that a missing library is a clear LibraryNotFoundError.
set -euo pipefail
src=$1 build=$2 lib=$3 python=${4:-/usr/bin/python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# pip builds in the source directory: build from a copy so the tree stays clean.
mkdir "$tmp/src"
cp -r "$src/pyproject.toml" "$src/README.md" "$src/resonance" "$tmp/src/"
"$python" -m venv --system-site-packages "$tmp/venv"
py=$tmp/venv/bin/python
"$tmp/venv/bin/pip" install -q --no-build-isolation --no-deps --no-index "$tmp/src"
cd "$tmp"   # not the source tree: import the installed copy
unset RESONANCE_LIB

smoke='
import os, sys, tempfile, numpy as np, resonance
where = resonance.__file__
assert where.startswith(sys.prefix), where
with tempfile.TemporaryDirectory() as d:
    with resonance.open(os.path.join(d, "t.db"), create=True, dim=4) as db:
        db.upsert(["a", "b"], np.eye(2, 4), title=["first", "second"])
        r = db.search([1, 0.1, 0, 0], k=5, hydrate=True)
        assert r.counts.tolist() == [2] and r.ids[0, 0] == "a", r
print("imported", where, "library", resonance.library_path(), resonance.version())
'

echo "== 1. RESONANCE_LIB=$lib"
out=$(RESONANCE_LIB=$lib "$py" -c "$smoke")
echo "$out"
grep -qF "library $lib" <<<"$out"

echo "== 2. installed under the prefix ($tmp/venv)"
cmake --install "$build" --prefix "$tmp/venv" >/dev/null
out=$("$py" -c "$smoke")
echo "$out"
grep -qE "library $tmp/venv/lib[^ ]*/libresonance\.so" <<<"$out"

echo "== 3. beside the package"
pkg=$("$py" -c 'import os, resonance; print(os.path.dirname(resonance.__file__))')
cp "$lib" "$pkg/libresonance.so"
out=$("$py" -c "$smoke")
echo "$out"
grep -qF "library $pkg/libresonance.so" <<<"$out"

echo "== 4. a missing library"
out=$(RESONANCE_LIB=$tmp/nowhere.so "$py" -c '
import resonance
try:
    resonance.open("x.db")
except resonance.LibraryNotFoundError as e:
    print("error:", e)
' 2>&1)
echo "$out"
grep -q "^error: RESONANCE_LIB=.*nowhere.so.*no such file" <<<"$out"

echo "== help(resonance.open) renders"
"$py" -c 'import pydoc, resonance; t = pydoc.render_doc(resonance.open, renderer=pydoc.plaintext); assert "create" in t and "Raises" in t; print(t.splitlines()[2])'
echo "python install test passed"
