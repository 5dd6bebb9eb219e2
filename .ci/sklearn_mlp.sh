#!/usr/bin/env bash
# scikit-learn's own MLP tests against fastnet's drop-ins.
#
# Copies sklearn/neural_network/tests/test_mlp.py from the *installed*
# scikit-learn (so it always matches the version fastnet subclasses), swaps only
# its import of MLPClassifier/MLPRegressor for fastnet's, and runs it with
# scikit-learn's conftest (its fixtures, e.g. global_random_seed).
# Extra arguments go to pytest (e.g. -x, -k NAME).
#
# Tests that cannot pass are deselected below, each with its reason.
set -euo pipefail

PYTHON="${PYTHON:-python}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

"$PYTHON" - "$tmp/test_mlp.py" <<'PY'
import importlib.util
import pathlib
import re
import sys

spec = importlib.util.find_spec("sklearn")
if spec is None:
    sys.exit("scikit-learn is not installed")
root = next(iter(spec.submodule_search_locations))
src = pathlib.Path(root, "neural_network", "tests", "test_mlp.py")
text = src.read_text()
# the one change: the classes under test come from fastnet
old = "from sklearn.neural_network import MLPClassifier, MLPRegressor\n"
new = "from fastnet import MLPClassifier, MLPRegressor\n"
if text.count(old) != 1:
    sys.exit(f"{src}: its import of the MLP classes changed; update the swap here")
text = text.replace(old, new)
if re.search(r"from sklearn\.neural_network import[^\n]*(\(|MLP)", text):
    sys.exit(f"{src}: imports MLP classes from scikit-learn elsewhere too")
pathlib.Path(sys.argv[1]).write_text(text)
print(f"testing fastnet with {src}")
PY

# The tests that cannot pass with fastnet, one per line with its reason, as
#     "test_name[params]"  # why it cannot pass
# (empty: all of scikit-learn 1.9.1's 59 pass)
deselect=(
)

args=()
for t in ${deselect[@]+"${deselect[@]}"}; do
    args+=(--deselect "test_mlp.py::$t")  # node ids are relative to $tmp
done

cd "$tmp"
"$PYTHON" -m pytest -q -p sklearn.conftest -p no:cacheprovider \
    "$tmp/test_mlp.py" ${args[@]+"${args[@]}"} "$@"
