"""fastnet's one point of contact with Numba's private internals.

fastnet keeps its kernels' cache outside the installed package (``kernels/_cache.py``
gives each dispatcher a cache of its own: Numba's ``_CacheLocator`` and
``_SourceFileBackedLocatorMixin``, a dispatcher's ``_cache`` and a ``cfunc``'s
``_pyfunc``; its ``FunctionCache`` reads and writes the files itself, with Numba's
``_index_key`` and its pickler ``numba.core.serialize.dumps``), compiles C-callable
kernels with Numba's ``CFunc`` class (``numba.core.ccallback``) and recognises its
own dispatchers (``numba.core.registry.CPUDispatcher``). The native cache
(``fastnet._runtime``) writes a fresh ``cfunc``'s object code (its
``_library._compiled_object`` and ``_wrapper_name``, whose form
:func:`wraps_kernel` knows) and loads it later without importing Numba: it reads
Numba's version file (``_version.py``), loads Numba's two extension modules
``_helperlib`` and ``_nrt_python`` as plain files for the helpers (``c_helpers``)
that the code calls, and asks ``numba.misc.appdirs`` for the per-user cache folder.

Private names change between releases without a deprecation, so they are reached
here and nowhere else (a test checks), and checked: at import, without importing
Numba, its version against the tested range; on first use of the Numba side
(:func:`numba_side`), every class and method named above. A Numba older than the
tested range, or one whose internals no longer look as fastnet expects, raises an
``ImportError`` that names the tested range and the fix.

The first part (up to :func:`numba_side`) never imports Numba: a process whose
kernels load from the native cache uses only it.
"""

import functools
import importlib.machinery
import importlib.util
import inspect
import pathlib
import re
import sys
import types

#: The oldest and the newest Numba release (major, minor) that ``.ci/versions.sh``
#: tests; pyproject.toml's floor is the first.
TESTED = ((0, 59), (0, 68))

_spec = importlib.util.find_spec("numba")
if _spec is None or _spec.origin is None:
    raise ImportError("fastnet's kernels need Numba: pip install numba")
#: Numba's installed package folder (found without importing it)
FOLDER = pathlib.Path(_spec.origin).parent
_VERSION_FILE = FOLDER / "_version.py"


def version_file():
    """The bytes of Numba's version file (part of the caches' keys)."""
    return _VERSION_FILE.read_bytes()


def release(text):
    """``(major, minor)`` of Numba's version file's text, or of a version string."""
    match = re.search(r'(?:"version": "|^)(\d+)\.(\d+)', text)
    return (int(match[1]), int(match[2])) if match else (0, 0)


def _installed():
    try:
        text = version_file().decode()
    except OSError:
        return "(no version file)", (0, 0)
    match = re.search(r'"version": "([^"]+)"', text)
    return (match[1] if match else "(unknown)"), release(text)


def unsupported(problem):
    """The ImportError for an installed Numba that fastnet cannot use."""
    (lo_major, lo_minor), (hi_major, hi_minor) = TESTED
    return ImportError(
        "fastnet's kernels build on Numba's private internals and are tested with "
        f"Numba {lo_major}.{lo_minor} to {hi_major}.{hi_minor}; the installed Numba "
        f"{_installed()[0]} {problem}. Install a tested release: pip install "
        f"'numba>={lo_major}.{lo_minor},<{hi_major}.{hi_minor + 1}'"
    )


if _installed()[1] < TESTED[0]:
    raise unsupported("is older")


# -- without importing Numba -----------------------------------------------------------
def _module_file(name, relative):
    """Numba's module ``name`` (a file under Numba's folder), loaded as a plain file
    under a private name: Numba's package (and its import) stays out."""
    if name in sys.modules:
        return sys.modules[name]
    found = sorted(FOLDER.glob(relative))
    if not found:
        raise ImportError(f"no {relative} in {FOLDER}")
    path = str(found[0])
    private = "fastnet._numba_" + name.rsplit(".", 1)[1]
    if path.endswith(".py"):
        loader = importlib.machinery.SourceFileLoader(private, path)
    else:
        # an extension module's init function is named by the last part of the
        # name it is loaded as, so it keeps its own
        loader = importlib.machinery.ExtensionFileLoader(name, path)
    spec = importlib.util.spec_from_file_location(loader.name, path, loader=loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def c_helper_symbols():
    """``{symbol: address}`` of the helpers Numba's compiled code calls: its GIL
    helpers and its entry to SciPy's BLAS (``numba_*``, from ``_helperlib``) and
    its runtime's (``NRT_*``, from ``_nrt_python``); an ``ImportError`` where
    either module is not there."""
    helper = _module_file("numba._helperlib", "_helperlib*.so")
    nrt = _module_file("numba.core.runtime._nrt_python",
                       "core/runtime/_nrt_python*.so")  # fmt: skip
    symbols = {"numba_" + k: v for k, v in helper.c_helpers.items()}
    symbols.update({"NRT_" + k: v for k, v in nrt.c_helpers.items()})
    return symbols


def user_cache_dir(appname):
    """The platform's per-user cache folder for ``appname`` (Numba's ``appdirs``,
    which reads ``XDG_CACHE_HOME`` on Linux)."""
    appdirs = _module_file("numba.misc.appdirs", "misc/appdirs.py")
    return appdirs.AppDirs(appname=appname, appauthor=False).user_cache_dir


def object_code(compiled):
    """``(symbol, object code)`` of a Numba ``CFunc`` just compiled; None where
    Numba has no object code for it (after a load from Numba's own cache)."""
    library = getattr(compiled, "_library", None)
    obj = getattr(library, "_compiled_object", None)
    symbol = getattr(compiled, "_wrapper_name", None)
    if not obj or not symbol:
        return None
    return symbol, bytes(obj)


def wraps_kernel(symbol, name):
    """Whether ``symbol`` is the name Numba gives the C wrapper of a ``cfunc`` whose
    function fastnet named ``name`` (``kernels/_config.py`` names each copy
    ``name__<tag>``): ``cfunc.`` and the Itanium-mangled qualified name, each part
    after ``_ZN`` prefixed by its length, the function's last."""
    prefix = "cfunc._ZN"
    if not symbol.startswith(prefix):
        return False
    at, last = len(prefix), ""
    while match := re.match(r"[1-9]\d*", symbol[at:]):
        at += match.end()
        last = symbol[at : at + int(match[0])]
        at += int(match[0])
    return re.fullmatch(re.escape(name) + r"__[0-9a-f]+", last) is not None


# -- with Numba ------------------------------------------------------------------------
#: the classes fastnet uses, by module, with the methods it relies on (the cache's
#: as in Numba 0.68.1: ``kernels/_cache.py`` overrides ``load_overload``,
#: ``save_overload`` and ``flush``)
_CLASSES = {
    "numba.core.caching": {
        "_CacheLocator": (
            "get_cache_path",
            "get_suitable_cache_subpath",
            "ensure_cache_path",
        ),
        "_SourceFileBackedLocatorMixin": ("get_source_stamp",),
        "CompileResultCacheImpl": ("reduce", "rebuild", "check_cachable"),
        "FunctionCache": ("load_overload", "save_overload", "flush", "_index_key"),
    },
    "numba.core.ccallback": {"CFunc": ("compile",)},
    "numba.core.registry": {"CPUDispatcher": ()},
}


@functools.cache
def numba_side():
    """Numba's classes that fastnet builds on (imports Numba), checked: a
    namespace of ``CacheLocator``, ``SourceFileBackedLocatorMixin``,
    ``CompileResultCacheImpl``, ``FunctionCache``, ``CFunc`` and ``Dispatcher``,
    and ``dumps`` (Numba's pickler for its cache files); :func:`unsupported`'s
    ImportError where one is missing or changed."""
    found = {}
    for module_name, classes in _CLASSES.items():
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise unsupported(f"has no module {module_name}") from exc
        for name, methods in classes.items():
            cls = getattr(module, name, None)
            if not isinstance(cls, type):
                raise unsupported(f"has no class {module_name}.{name}")
            for method in methods:
                if not callable(getattr(cls, method, None)):
                    raise unsupported(f"has no {name}.{method}")
            found[name.lstrip("_")] = cls
    params = tuple(inspect.signature(found["CFunc"].__init__).parameters)[1:5]
    if params != ("pyfunc", "sig", "locals", "options"):
        raise unsupported(f"has CFunc({', '.join(params)}, ...)")
    found["Dispatcher"] = found.pop("CPUDispatcher")
    serialize = importlib.import_module("numba.core.serialize")
    found["dumps"] = getattr(serialize, "dumps", None)
    if not callable(found["dumps"]):
        raise unsupported("has no numba.core.serialize.dumps")
    return types.SimpleNamespace(**found)


@functools.cache
def blas_helpers():
    """``(ensure_blas, get_blas_kind)`` of ``numba.np.linalg`` (imports Numba):
    undocumented helpers that bind SciPy's BLAS to Numba's ``numba_xxgemm`` entry
    and name a dtype's BLAS letter; :func:`unsupported`'s ImportError where one is
    missing."""
    linalg = importlib.import_module("numba.np.linalg")
    found = [getattr(linalg, name, None) for name in ("ensure_blas", "get_blas_kind")]
    if not all(callable(f) for f in found):
        raise unsupported("has no numba.np.linalg.ensure_blas / get_blas_kind")
    return tuple(found)


def make_cfunc(func, signature, options):
    """A Numba ``CFunc`` of ``func`` for the Numba ``signature``, not compiled."""
    cfunc_class = numba_side().CFunc
    return cfunc_class(func, (signature.args, signature.return_type), {}, options)


def python_function(dispatcher):
    """The Python function of a Numba dispatcher or ``CFunc``."""
    return getattr(dispatcher, "py_func", None) or dispatcher._pyfunc


def set_cache(dispatcher, cache):
    """Give a Numba dispatcher or ``CFunc`` the on-disk cache ``cache``."""
    dispatcher._cache = cache
