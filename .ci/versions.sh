#!/usr/bin/env bash
# Declared versions are tested versions. The kernel, layer, loss and estimator tests
# run twice, each in a fresh virtual environment with fastnet installed from a wheel:
#   (a) on the oldest supported Python with every dependency at the floor that
#       pyproject.toml declares (.ci/min-versions.txt; tests/test_package.py checks
#       that the two agree), pytest and hypothesis included;
#   (b) on the newest supported Python with the newest releases.
# Each run starts with an empty Numba cache, so every kernel compiles on that Python.
# The two test runs go side by side: 4 to 5 minutes in all on 2 cores that other
# work was using too (run one after the other: 7). The Pythons come from pyenv;
# where pyenv is missing this prints why and skips (exit 0); any other failure exits
# non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

# Oldest first, newest first: the first one pyenv has is used.
OLDEST=(3.10 3.11)
NEWEST=(3.13 3.12)
TESTS=(
    tests/kernels
    tests/layers
    tests/test_losses.py
    tests/test_estimator.py
    tests/test_sklearn.py
)

PYENV=$(command -v pyenv || echo "${PYENV_ROOT:-$HOME/.pyenv}/bin/pyenv")
if [ ! -x "$PYENV" ]; then
    echo "versions.sh: SKIPPED: pyenv is not installed (not on PATH, nor at $PYENV)," \
        "so there is no Python ${OLDEST[0]} or ${NEWEST[0]} to test with." >&2
    exit 0
fi
PYENV_VERSIONS="$("$PYENV" root)/versions"

# The newest patch release of the first minor version in "$@" that pyenv has.
find_python() {
    local minor found
    for minor in "$@"; do
        found=$(find "$PYENV_VERSIONS" -maxdepth 3 -path "*/$minor.[0-9]*/bin/python" \
            2>/dev/null | sort -V | tail -n 1)
        if [ -n "$found" ]; then
            if [ "$minor" != "$1" ]; then
                echo "versions.sh: WARNING: pyenv has no Python $1.x; using $minor" \
                    "($found) instead, so Python $1 goes untested." >&2
            fi
            echo "$found"
            return 0
        fi
    done
    echo "versions.sh: pyenv ($PYENV_VERSIONS) has none of Python $*;" \
        "install one with: pyenv install $1" >&2
    return 1
}
PY_OLDEST=$(find_python "${OLDEST[@]}")
PY_NEWEST=$(find_python "${NEWEST[@]}")

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# The working tree as it is (tracked and new files, none that git ignores), built
# into one wheel; the tests then run from a copy without fastnet's sources, so they
# import the installed package, kernels mapped to fastnet.kernels as a user gets it.
SRC=$WORK/src
mkdir "$SRC"
git ls-files -z --cached --others --exclude-standard \
    | tar --null --files-from=- --ignore-failed-read -cf - 2>/dev/null \
    | tar -xf - -C "$SRC"
"$PY_NEWEST" -m pip wheel --quiet --disable-pip-version-check --no-deps \
    --wheel-dir "$WORK/dist" "$SRC"
WHEEL=$(echo "$WORK"/dist/fastnet-*.whl)
rm -rf "$SRC/fastnet" "$SRC/kernels" "$SRC/build"

# setup NAME PYTHON [pip arguments...]: a fresh venv with the wheel, pytest and
# hypothesis; prints the versions it got.
setup() {
    local name=$1 python=$2 env=$WORK/$1
    shift 2
    "$python" -m venv "$env"
    "$env/bin/python" -m pip install --quiet --disable-pip-version-check \
        "$WHEEL" pytest hypothesis "$@"
    (cd "$SRC" && "$env/bin/python" - "$name") <<'EOF'
import importlib.metadata as md
import platform
import sys

import fastnet

names = "numpy numba scipy scikit-learn threadpoolctl tqdm pytest hypothesis".split()
print(f"== versions.sh ({sys.argv[1]}): Python {platform.python_version()}, "
      + ", ".join(f"{n} {md.version(n)}" for n in names))
assert "site-packages" in fastnet.kernels.__file__, fastnet.kernels.__file__
EOF
}

# check NAME: the tests in that venv, with a Numba cache of its own.
check() {
    cd "$SRC"
    NUMBA_CACHE_DIR=$WORK/numba-cache-$1 "$WORK/$1/bin/python" -m pytest \
        "${TESTS[@]}" -q -p no:cacheprovider
}

start=$SECONDS
setup oldest "$PY_OLDEST" --constraint "$ROOT/.ci/min-versions.txt"
setup newest "$PY_NEWEST"
echo "== versions.sh: installed in $((SECONDS - start)) s; testing both at once"

# Each run spends most of its time compiling kernels on one core: side by side on
# two cores they take about as long as the slower one alone.
check oldest >"$WORK/oldest.log" 2>&1 &
oldest=$!
check newest >"$WORK/newest.log" 2>&1 &
newest=$!
failed=()
wait "$oldest" || failed+=(oldest)
wait "$newest" || failed+=(newest)
for name in oldest newest; do
    echo "== versions.sh ($name): tests"
    cat "$WORK/$name.log"
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "== versions.sh: FAILED: ${failed[*]} (after $((SECONDS - start)) s)" >&2
    exit 1
fi
echo "== versions.sh: both passed in $((SECONDS - start)) s"
