"""Packaging and kernel-layer rules that outside checks rely on."""

import ast
import os
import pathlib
import subprocess
import sys
import tracemalloc

import numba
import numpy as np
import pytest
from numba.core.caching import NullCache

import fastnet as fn
from fastnet import kernels

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_kernels_install_as_fastnet_kernels_only(tmp_path):
    code = (
        "import importlib.util, fastnet.kernels, pathlib;"
        "print(importlib.util.find_spec('kernels'));"
        "print(pathlib.Path(fastnet.kernels.__file__).parent.name)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["None", "kernels"]


def test_fastmath_comes_from_one_constant():
    assert not {"nnan", "ninf", "fast"} & kernels.FASTMATH
    for path in (ROOT / "kernels").glob("*.py"):
        if path.name == "_config.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.keyword):
                assert node.arg not in ("fastmath", "cache", "parallel"), (
                    f"{path.name}: compile options belong in kernels/_config.py"
                )


def _dispatchers():
    found = []
    for value in vars(kernels).values():
        if isinstance(value, numba.core.registry.CPUDispatcher):
            found.append(value)
        elif isinstance(value, tuple):
            found += [
                v for v in value if isinstance(v, numba.core.registry.CPUDispatcher)
            ]
    for act in kernels.ACTIVATIONS.values():
        for pair in act[:5]:
            found += list(pair)
    return found


def test_every_kernel_is_cached_and_uses_the_shared_flags():
    dispatchers = _dispatchers()
    assert len(dispatchers) > 40
    for d in dispatchers:
        assert not isinstance(d._cache, NullCache), d.py_func.__qualname__
        assert set(d.targetoptions["fastmath"]) == set(kernels.FASTMATH)
        assert d.targetoptions["error_model"] == "numpy"
        assert d.targetoptions["nogil"], d.py_func.__qualname__  # threads run at once
        cache_path = pathlib.Path(d._cache._impl.locator.get_cache_path())
        package = pathlib.Path(kernels.__file__).parent
        assert package not in cache_path.parents, cache_path


def test_cache_names_are_the_same_in_every_process(tmp_path):
    # The options' tag names every cache file. Set order follows the per-process
    # string hash: a tag built from an unsorted set differed between these seeds, so
    # other processes (Dask workers, the next run) missed the cache and compiled.
    code = "from fastnet.kernels import _config; print(_config._TAG)"
    tags = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in range(6)
    }
    assert len(tags) == 1 and len(tags.pop().strip()) == 8


def test_parallel_twins_are_parallel():
    serial, parallel = kernels.softmax_forward
    assert parallel.targetoptions.get("parallel") and not serial.targetoptions.get(
        "parallel"
    )
    assert kernels.pick(kernels.softmax_forward, 10) is serial
    assert kernels.pick(kernels.softmax_forward, 10**6) is parallel


def test_threading_layer_is_safe_for_concurrent_calls():
    x = np.ones(kernels.PARALLEL_MIN_SIZE * 2)
    fn.ReLU().forward(x)
    assert numba.threading_layer() in ("tbb", "omp")


def test_training_step_allocates_no_arrays(rng):
    # Every array in this step is >= 10 KiB (the smallest: 256 x 10 float32), so the
    # peak of traced memory over 100 steps stays below that only if no step allocates
    # an array, even a temporary one. Python's own small objects stay under ~3 KiB.
    layers = [
        fn.Linear(64, 128, random_state=0),
        fn.GELU(),
        fn.Linear(128, 10, random_state=1),
    ]
    loss_fn = fn.SoftmaxCrossEntropy()
    x = rng.standard_normal((256, 64)).astype(np.float32)
    y = rng.integers(0, 10, 256)

    def step():
        h = x
        for layer in layers:
            h = layer.forward(h)
        loss_fn.forward(h, y)
        g = loss_fn.backward()
        for layer in reversed(layers):
            g = layer.backward(g)

    for _ in range(3):
        step()
    tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        for _ in range(100):
            step()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - start < 8 * 1024, peak - start


def test_min_versions_pin_pyproject_floors():
    # .ci/versions.sh installs .ci/min-versions.txt on the oldest Python: the floors
    # pyproject.toml declares are the versions that run the tests.
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    floors = {}
    for requirement in [
        *project["dependencies"],
        *project["optional-dependencies"]["test"],
    ]:
        name, _, floor = requirement.partition(">=")
        assert floor and "," not in floor, f"{requirement}: declare one floor, '>='"
        floors[name.split("[")[0].lower()] = floor
    pins = {}
    for line in (ROOT / ".ci" / "min-versions.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[name.lower()] = version

    def release(version):
        parts = [int(p) for p in version.split(".")]
        return tuple(parts + [0] * (3 - len(parts)))

    assert pins.keys() == floors.keys()
    for name, floor in floors.items():
        assert release(pins[name]) == release(floor), (name, pins[name], floor)


_IMPORT_COLLECTIONS = """
import gc, sys
import sklearn.neural_network  # what a caller has loaded already
during = []
gc.callbacks.append(lambda phase, info: phase == "start" and during.append(info))
import fastnet
from fastnet import MLPClassifier  # Numba, the kernels' dispatchers
during_import = len(during)
off = gc.isenabled()
gc.disable()
fastnet.Trainer  # with the collector off, it stays off
print(during_import, off, gc.isenabled())
"""


def test_the_estimators_import_without_collections_and_restore_the_collector():
    # the import makes some 45,000 lasting objects: no collection walks the heap
    # while it does (without the pause: about 110), and the collector is on after
    out = subprocess.run(
        [sys.executable, "-c", _IMPORT_COLLECTIONS], capture_output=True, text=True
    )
    assert out.stdout.split() == ["0", "True", "False"], out.stderr
