"""The whole-network kernels' C calling convention, declared once
(``kernels/abi.py``): the C functions' parameters, their Numba signatures, the
``ctypes`` types and the calls all come from it; kernels/ imports nothing above
it; Numba's private names are reached from one module."""

import ast
import ctypes
import pathlib
import subprocess
import sys

import pytest
from numba import types

import fastnet
import fastnet.kernels
from fastnet._runtime import c_kernels
from fastnet.kernels import _numba_internals, abi, mlp_cfuncs

#: the installed sources (in a wheel, fastnet.kernels lives inside fastnet/)
FASTNET = pathlib.Path(fastnet.__file__).parent
KERNELS = pathlib.Path(fastnet.kernels.__file__).parent
SOURCES = sorted({*FASTNET.rglob("*.py"), *KERNELS.glob("*.py")})
SPECS = {"EPOCH": abi.EPOCH, "FORWARD": abi.FORWARD, "EPOCH_AT": abi.EPOCH_AT}


def _c_functions():
    return {
        name: value
        for name, value in vars(mlp_cfuncs).items()
        if name.startswith("_") and name.endswith("_c") and callable(value)
    }


def test_every_c_function_has_the_parameters_of_its_spec():
    found = _c_functions()
    assert set(found) == set(mlp_cfuncs.C_FUNCTIONS)
    for name, spec in mlp_cfuncs.C_FUNCTIONS.items():
        code = found[name].__code__
        assert code.co_varnames[: code.co_argcount] == spec.names, name
    assert mlp_cfuncs._epoch_c.__code__.co_argcount == len(abi.EPOCH.params)
    assert mlp_cfuncs._forward_c.__code__.co_argcount == len(abi.FORWARD.params)


def test_a_template_whose_parameters_differ_is_refused():
    def _bias_act_c(z, b, out, d, m, alpha):  # m and d swapped
        pass

    with pytest.raises(TypeError, match="parameters are not"):
        mlp_cfuncs._maker(_bias_act_c, "c_x", abi.BIAS_ACT)


def test_every_maker_compiles_with_its_specs_numba_signature(monkeypatch):
    made = []
    monkeypatch.setattr(
        mlp_cfuncs, "cfunc", lambda f, name, sig, **consts: made.append((f, sig))
    )
    for make in mlp_cfuncs.makers().values():
        make()
    assert len(made) == len(mlp_cfuncs.makers())
    of = {"i": types.int64, "f": types.float64, "l": types.CPointer(types.int64),
          "h": types.CPointer(types.float64)}  # fmt: skip
    for template, sig in made:
        spec = mlp_cfuncs.C_FUNCTIONS[template.__name__]
        assert len(sig.args) == len(spec.params)
        dtypes = set()
        for arg, kind in zip(sig.args, spec.kinds, strict=True):
            if kind == "p":
                dtypes.add(arg.dtype)
            else:
                assert arg == of[kind], (template.__name__, kind, arg)
        assert dtypes <= {types.float32, types.float64}
        want = types.void if spec.returns is None else of[spec.returns]
        assert sig.return_type == want
    epoch_sig = mlp_cfuncs.signature(abi.EPOCH)
    # alpha, l2, grad_scale, loss_scale, clip
    assert [str(a) for a in epoch_sig.args].count("float64") == 5


def test_the_ctypes_functions_take_the_specs_types(monkeypatch):
    monkeypatch.setattr(c_kernels, "_state", {})
    monkeypatch.setattr(c_kernels, "ensure", lambda name: 1)  # never called
    i, f = ctypes.c_int64, ctypes.c_double
    epoch = c_kernels.epoch_kernel()
    assert list(epoch.argtypes) == [i] * 12 + [f] * 5 + [i] * 8
    assert epoch.restype is i
    forward = c_kernels.forward_kernel()
    assert list(forward.argtypes) == [i] * 10 + [f] + [i] * 3
    finite = c_kernels.function(abi.ALL_FINITE, "c_all_finite_float64")
    assert list(finite.argtypes) == [i, i] and finite.restype is i
    for spec in (abi.EPOCH, abi.FORWARD, abi.ALL_FINITE):
        assert len(spec.argtypes()) == len(spec.params)


def test_pack_orders_by_name_and_refuses_missing_or_unknown_names():
    spec = abi.CKernel(abi._params("a:i b:f c:l"), "i", "c_test")
    assert spec.pack(c=3, a=1, b=2.0) == (1, 2.0, 3)
    with pytest.raises(TypeError, match=r"missing \['c'\]"):
        spec.pack(a=1, b=2.0)
    with pytest.raises(TypeError, match=r"unknown \['d'\]"):
        spec.pack(a=1, b=2.0, c=3, d=4)


def test_call_sites_name_only_the_specs_parameters():
    calls = 0
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "pack"
                and isinstance(node.func.value, ast.Attribute)
                and node.func.value.attr in SPECS
            ):
                continue
            calls += 1
            spec = SPECS[node.func.value.attr]
            assert not node.args, f"{path.name}:{node.lineno} passes by position"
            named = {k.arg for k in node.keywords if k.arg is not None}
            unknown = named - set(spec.names)
            assert not unknown, f"{path.name}:{node.lineno} passes {unknown}"
    assert calls >= 3  # the epoch's, its at array's and the forward's


def test_the_epochs_arrays_are_named_as_the_spec_names_them():
    from fastnet._runtime import mlp

    source = pathlib.Path(mlp.__file__).read_text()
    tree = ast.parse(source)
    found = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "dict"
        ):
            names = {k.arg for k in node.keywords}
            if "zo" in names:  # _ModelState.arrays
                assert names <= set(abi.EPOCH.names)
                found.add("arrays")
            elif "zs" in names:  # _ModelState.at_arrays
                assert names <= set(abi.EPOCH_AT.names)
                found.add("at_arrays")
    assert found == {"arrays", "at_arrays"}


def test_the_derived_tables_agree():
    assert len(abi.epoch_names("relu", "squared_error", "adam", "float64")) == len(
        abi.EPOCH_FNS
    )
    assert len(abi.forward_names("relu", "softmax", "float32")) == len(abi.FORWARD_FNS)
    assert {n for n in mlp_cfuncs.makers() if n.startswith("c_epoch")} == {"c_epoch"}


def _imports(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            yield (
                node.lineno,
                node.level,
                node.module or "",
                [a.name for a in node.names],
            )
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, 0, alias.name, []


def test_kernels_import_nothing_above_them():
    paths = sorted(KERNELS.glob("*.py"))
    assert len(paths) > 10  # the sources were found
    for path in paths:
        for line, level, module, _ in _imports(path):
            where = f"kernels/{path.name}:{line}"
            assert level < 2, f"{where} imports from above kernels/"
            top = module.split(".")
            if top[0] == "fastnet":
                assert top[:2] == ["fastnet", "kernels"], f"{where} imports {module}"


#: Numba's private names that only kernels/_numba_internals.py may reach
NUMBA_PRIVATE = {
    "_library",
    "_compiled_object",
    "_wrapper_name",
    "_CacheLocator",
    "_SourceFileBackedLocatorMixin",
    "_pyfunc",
    "_helperlib",
    "_nrt_python",
    "c_helpers",
    "_version",
}
NUMBA_PRIVATE_MODULES = {
    "numba.core.caching",
    "numba.core.ccallback",
    "numba.core.registry",
    "numba.misc.appdirs",
    "numba.np.linalg",
}


def test_no_other_module_reaches_numbas_private_names():
    owner = KERNELS / "_numba_internals.py"
    assert owner in SOURCES
    for path in SOURCES:
        if path == owner:
            continue
        tree = ast.parse(path.read_text())
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef))
            and node.body
            and isinstance(node.body[0], ast.Expr)
        }
        for line, level, module, names in _imports(path):
            if level == 0 and module.split(".")[0] == "numba":
                private = [n for n in [*module.split("."), *names] if n[:1] == "_"]
                assert not private, f"{path.name}:{line} imports {private}"
                assert module not in NUMBA_PRIVATE_MODULES, f"{path.name}:{line}"
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                bad = node.attr in NUMBA_PRIVATE or node.attr == "_cache"
                # (kernels._cache, the module, is imported, never an attribute)
                assert not bad, f"{path.name}:{node.lineno} reaches .{node.attr}"
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                if id(node) in docstrings:
                    continue
                for name in ("_helperlib", "_nrt_python", "appdirs", "_version.py"):
                    assert name not in node.value, f"{path.name}:{node.lineno} {name}"


def test_an_unsupported_numba_names_the_tested_range():
    (lo_major, lo_minor), (hi_major, hi_minor) = _numba_internals.TESTED
    error = _numba_internals.unsupported("is older")
    message = str(error)
    assert f"{lo_major}.{lo_minor} to {hi_major}.{hi_minor}" in message
    assert f"numba>={lo_major}.{lo_minor},<{hi_major}.{hi_minor + 1}" in message
    import numba

    assert numba.__version__ in message
    assert _numba_internals.release(numba.__version__) >= _numba_internals.TESTED[0]
    assert _numba_internals.release('"version": "0.58.1"') == (0, 58)


def test_numbas_internals_are_checked_on_first_use():
    side = _numba_internals.numba_side()
    for name in ("CacheLocator", "SourceFileBackedLocatorMixin", "CFunc",
                 "CompileResultCacheImpl", "FunctionCache", "Dispatcher"):  # fmt: skip
        assert isinstance(getattr(side, name), type)


def test_the_spec_the_paths_and_the_runtime_import_without_numba():
    code = (
        "import sys\n"
        "import fastnet.kernels.abi, fastnet.kernels._paths\n"
        "import fastnet._runtime.native, fastnet._runtime.mlp\n"
        "print('numba' in sys.modules)"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert run.stdout.split() == ["False"]
