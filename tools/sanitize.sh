#!/usr/bin/env bash
# Build the C++ kernels with AddressSanitizer + UndefinedBehaviorSanitizer
# and run the kernel, format and fuzz tests against that build.
#
#   tools/sanitize.sh            # build (if needed) and run the default tests
#   tools/sanitize.sh tests/kernels/test_conv2d.py -k stride   # other pytest args
#
# The build happens in a copy of the tree under build/sanitize/ (gitignored),
# never in place, so the normal extension in qnnref/_kernels/ is untouched.
# Any ASan report (heap overflow, use after free, ...) or UBSan report
# (signed overflow, bad shift, misaligned access, out-of-range float to
# int conversion, ...) aborts the process, which fails the run (every
# report is made fatal with -fno-sanitize-recover=all).
#
# Environment: QNNREF_SANITIZE_DIR (default build/sanitize), PYTHON (default
# python), QNNREF_FUZZ_EXAMPLES (default 60: fuzz examples per test, to keep
# the run to a few minutes on 2 cores), JOBS (default 2).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${QNNREF_SANITIZE_DIR:-$ROOT/build/sanitize}"
PYTHON="${PYTHON:-python}"
JOBS="${JOBS:-2}"
TREE="$DIR/tree"

SAN_FLAGS="-fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all -fno-omit-frame-pointer -g"

for tool in gcc g++; do
    command -v "$tool" >/dev/null || { echo "sanitize.sh: $tool is needed (ASan/UBSan builds use GCC)" >&2; exit 1; }
done
"$PYTHON" -c "import Cython, numpy, setuptools" 2>/dev/null || {
    echo "sanitize.sh: the build needs Cython, numpy and setuptools in $PYTHON (pip install 'Cython>=3.0')" >&2
    exit 1; }

# 1. A copy of the sources (tracked and untracked, not ignored) without build
#    products. Python files and spec pages are removed first, so a file
#    deleted or renamed in the worktree does not linger in the copy; C++
#    sources keep their times (cp -p), so only what changed is recompiled.
mkdir -p "$TREE"
find "$TREE" -path "$TREE/build" -prune -o -type f \( -name '*.py' -o -name '*.md' \) -print0 | xargs -0 rm -f
if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$ROOT" && git ls-files -co --exclude-standard -z) | (cd "$ROOT" && xargs -0 cp -p --parents -t "$TREE" 2>/dev/null || true)
else    # not a git checkout (e.g. .ci/run's copy of the tree): everything but build products
    (cd "$ROOT" && find . \( -path ./build -o -path ./.git -o -path ./.venv -o -path ./.ci-venv -o -name __pycache__ \
        -o -name '*.egg-info' -o -name '*.so' -o -path ./qnnref/_kernels/_ext.cpp \) -prune -o -type f -print0) \
        | (cd "$ROOT" && xargs -0 cp -p --parents -t "$TREE")
fi

# 2. Build the extension in the copy with the sanitizer flags (incremental:
#    setuptools rebuilds only what changed; everything when the flags did).
STAMP="$DIR/flags"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$SAN_FLAGS" ]; then
    rm -rf "$DIR/temp" "$DIR/lib" "$TREE/build" "$TREE"/qnnref/_kernels/_ext*.so
    echo "$SAN_FLAGS" >"$STAMP"
fi
(cd "$TREE" && CFLAGS="$SAN_FLAGS" CXXFLAGS="$SAN_FLAGS" LDFLAGS="-fsanitize=address,undefined,float-cast-overflow" \
    "$PYTHON" setup.py -q build_ext --inplace -j "$JOBS" --build-temp "$DIR/temp" --build-lib "$DIR/lib" >"$DIR/build.log" 2>&1) || {
    echo "sanitize.sh: the sanitized build failed; see $DIR/build.log" >&2
    tail -30 "$DIR/build.log" >&2
    exit 1
}
SYMBOLS="$(nm -D "$TREE"/qnnref/_kernels/_ext*.so)"
grep -q __asan_init <<<"$SYMBOLS" || {
    echo "sanitize.sh: the extension in $TREE is not instrumented" >&2; exit 1; }

# 3. Run the tests in the copy, with the ASan runtime loaded first (CPython
#    itself is not instrumented). Leak checks are off: CPython keeps its
#    allocations alive at exit by design.
if [ "$#" -eq 0 ]; then
    set -- tests/kernels tests/format tests/fuzz tests/ops/test_attribute_limits.py
fi
LIBASAN="$(gcc -print-file-name=libasan.so)"
LIBUBSAN="$(gcc -print-file-name=libubsan.so)"
cd "$TREE"
export QNNREF_FUZZ_EXAMPLES="${QNNREF_FUZZ_EXAMPLES:-60}"
export QNNREF_BACKEND=kernels
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:allocator_may_return_null=1:handle_segv=1:strict_string_checks=1:detect_stack_use_after_return=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export PYTHONMALLOC=malloc
LD_PRELOAD="$LIBASAN:$LIBUBSAN" "$PYTHON" -c "import qnnref._kernels._ext as e, sys; print('sanitized kernels:', e.__file__)"
LD_PRELOAD="$LIBASAN:$LIBUBSAN" exec "$PYTHON" -m pytest -q -p no:cacheprovider "$@"
