"""The native cache: the whole-network kernels' machine code, loaded without Numba.

A default fit runs one compiled epoch and five small C kernels; a prediction, one
forward and two or three C kernels (``kernels/mlp.py``). They are Numba ``cfunc``
kernels: plain C functions over addresses and numbers. When Numba compiles one, its
object code (ELF, as LLVM emitted it for this CPU) is written here, beside Numba's
own cache; a later process loads it with llvmlite's MCJIT alone and calls it through
``ctypes``, without importing Numba. Numba's import, its target's initialisation and
its objects' walk by the garbage collector at exit were 0.3-0.4 s of a 1.6 s warm
first fit (measured in ``bench/startup.py``).

The code needs a few symbols from outside itself: Python's C API and the C library
(found in the process), Numba's GIL helpers and its runtime's destructor call (on
error paths) and Numba's entry to SciPy's BLAS (``numba_xxgemm``), all taken from
Numba's two extension modules, loaded as files without Numba's package. Before an
object is added, every symbol it leaves undefined is resolved, or the object is not
used: MCJIT aborts the process on an unresolved symbol.

Where any step fails (another platform than ELF, a missing or damaged file, an
unknown symbol), the kernel compiles or loads through Numba as before; a file is
only ever a faster way to the same code. Files are keyed by the kernels' source hash,
Numba's and llvmlite's versions, and this CPU's name and features (and Numba's
settings that change code), and are written atomically (a temporary file, then a
rename), so processes sharing the folder stay safe.

Thread-safe: loading holds a lock; the returned functions are plain C functions.
"""

import ctypes
import hashlib
import importlib
import importlib.machinery
import importlib.util
import itertools
import os
import pathlib
import struct
import subprocess
import sys
import threading
import time

import numpy as np

#: the kernels' source folder (``fastnet.kernels``, wherever it is installed)
_KERNELS = pathlib.Path(importlib.util.find_spec("fastnet.kernels").origin).parent
_NUMBA = pathlib.Path(importlib.util.find_spec("numba").origin).parent


def _source_hash(folder=None):
    """A short hash of every kernel source file's bytes (in ``folder``, by default
    this package's) and of Numba's version file."""
    folder = pathlib.Path(folder or _KERNELS)
    digest = hashlib.sha1((_NUMBA / "_version.py").read_bytes())
    for path in sorted(folder.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


SOURCE_HASH = _source_hash()


def _module_file(name, relative):
    """Numba's module ``name`` (a file under Numba's folder), loaded as a plain file
    under a private name: Numba's package (and its import) stays out."""
    if name in sys.modules:
        return sys.modules[name]
    found = sorted(_NUMBA.glob(relative))
    if not found:
        raise ImportError(f"no {relative} in {_NUMBA}")
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


def cache_dir():
    """The folder fastnet's kernels are cached in, in this order: ``NUMBA_CACHE_DIR``
    (Numba's own setting wins, as for any Numba code), ``FASTNET_CACHE_DIR``, the
    platform's per-user cache folder for fastnet (``~/.cache/fastnet`` on Linux)."""
    chosen = os.environ.get("NUMBA_CACHE_DIR")
    if chosen:
        return chosen
    chosen = os.environ.get("FASTNET_CACHE_DIR")
    if chosen:
        return os.path.abspath(os.path.expanduser(chosen))
    appdirs = _module_file("numba.misc.appdirs", "misc/appdirs.py")
    return appdirs.AppDirs(appname="fastnet", appauthor=False).user_cache_dir


class _Loader:
    """One MCJIT engine for the process, and the symbols its objects may use."""

    def __init__(self):
        import llvmlite
        import llvmlite.binding as llvm

        self.llvm = llvm
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        features = llvm.get_host_cpu_features().flatten()
        key = [
            llvmlite.__version__,
            (_NUMBA / "_version.py").read_bytes().decode(),
            llvm.get_process_triple(),
            llvm.get_host_cpu_name(),
            features,
        ]
        # Numba's settings that change the code it emits
        settings = ("NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES", "NUMBA_OPT",
                    "NUMBA_BOUNDSCHECK")  # fmt: skip
        key += [os.environ.get(k, "") for k in settings]
        machine = hashlib.sha1(repr(key).encode()).hexdigest()[:12]
        self.folder = os.path.join(cache_dir(), SOURCE_HASH, f"native-{machine}")
        self.symbols = {}
        self.engine = None
        self.process = ctypes.CDLL(None)
        #: names whose file is missing or damaged (not those needing a symbol
        #: this process lacks: compiling again would give the same file)
        self.refresh = set()

    def _numba_symbols(self):
        if not self.symbols:
            helper = _module_file("numba._helperlib", "_helperlib*.so")
            nrt = _module_file("numba.core.runtime._nrt_python",
                               "core/runtime/_nrt_python*.so")  # fmt: skip
            self.symbols.update({"numba_" + k: v for k, v in helper.c_helpers.items()})
            self.symbols.update({"NRT_" + k: v for k, v in nrt.c_helpers.items()})
        return self.symbols

    def _resolve(self, name):
        numba_symbols = self._numba_symbols()
        if name in numba_symbols:
            return numba_symbols[name]
        try:
            return ctypes.cast(getattr(self.process, name), ctypes.c_void_p).value
        except AttributeError:
            return None

    def path(self, name):
        return os.path.join(self.folder, name + ".o")

    def load(self, name):
        """The address of the C kernel ``name`` from its object file, or None."""
        try:
            with open(self.path(name), "rb") as f:
                data = f.read()
            header, _, obj = data.partition(b"\n")
            symbol, digest = header.decode().split(" ")
            if hashlib.sha256(obj).hexdigest() != digest:
                raise ValueError("damaged")  # LLVM's object reader trusts its input
            needed = _undefined(obj)
        except (OSError, ValueError, struct.error):
            self.refresh.add(name)
            return None
        addresses = {}
        for needed_name in needed:
            address = self._resolve(needed_name)
            if not address:
                return None
            addresses[needed_name] = address
        llvm = self.llvm
        for needed_name, address in addresses.items():
            llvm.add_symbol(needed_name, address)
        if self.engine is None:
            target = llvm.Target.from_triple(llvm.get_process_triple())
            machine = target.create_target_machine(codemodel="jitdefault")
            self.engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), machine)
        self.engine.add_object_file(llvm.ObjectFileRef.from_data(obj))
        self.engine.finalize_object()
        return self.engine.get_function_address(symbol) or None

    def save(self, name, symbol, obj):
        """Write ``obj`` (the object code defining ``symbol``) as ``name``'s file,
        atomically; a folder that cannot be written is left alone (Numba's cache
        warns about it)."""
        try:
            _undefined(obj)  # an object this loader can read back
            os.makedirs(self.folder, exist_ok=True)
            path = self.path(name)
            temporary = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
            header = f"{symbol} {hashlib.sha256(obj).hexdigest()}\n"
            with open(temporary, "wb") as f:
                f.write(header.encode() + obj)
            os.replace(temporary, path)
        except (OSError, ValueError, struct.error):
            pass


def _undefined(obj):
    """The names of the symbols the ELF 64-bit little-endian object ``obj``
    references but does not define; a ``ValueError`` for anything else."""
    if len(obj) < 64 or obj[:4] != b"\x7fELF" or obj[4] != 2 or obj[5] != 1:
        raise ValueError("not an ELF64 little-endian object")
    (shoff,) = struct.unpack_from("<Q", obj, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", obj, 0x3A)
    sections = [
        struct.unpack_from("<IIQQQQIIQQ", obj, shoff + i * shentsize)
        for i in range(shnum)
    ]
    names = []
    for _, kind, _, _, offset, size, link, _, _, entsize in sections:
        if kind != 2:  # SHT_SYMTAB
            continue
        strings = sections[link][4]
        for j in range(1, size // entsize):
            at, _, _, shndx, _, _ = struct.unpack_from(
                "<IBBHQQ", obj, offset + j * entsize
            )
            if shndx == 0 and at:  # SHN_UNDEF, named
                end = obj.index(b"\0", strings + at)
                names.append(obj[strings + at : end].decode())
    return names


_lock = threading.Lock()
_state = {}
#: name -> address of every C kernel this process has, however it got it
_ADDRESSES = {}


def _loader():
    if "loader" not in _state:
        try:
            _state["loader"] = _Loader()
        except Exception:  # no llvmlite binding here, an odd platform: Numba only
            _state["loader"] = None
    return _state["loader"]


def lookup(name):
    """The address of the C kernel ``name`` (a ``kernels/mlp.py`` name), from this
    process or the native cache; None where it has to be compiled (by Numba)."""
    address = _ADDRESSES.get(name)
    if address is None:
        with _lock:
            address = _ADDRESSES.get(name)
            if address is None:
                loader = _loader()
                address = loader.load(name) if loader is not None else None
                if address:
                    _ADDRESSES[name] = address
    return address


def refresh(name):
    """Whether the C kernel ``name``, which :func:`lookup` did not find, should be
    compiled afresh rather than loaded from Numba's cache: its file is missing or
    damaged, and only a fresh compilation has the object code to write it again
    (Numba discards it after a load from its own cache)."""
    loader = _state.get("loader")
    return (
        loader is not None
        and name in loader.refresh
        and sys.platform.startswith("linux")
    )


def save(name, compiled):
    """Keep the C kernel ``compiled`` (a Numba ``CFunc`` just compiled) under
    ``name``: its address for this process and, when Numba has its fresh object code
    (not after a load from Numba's cache), its file for later processes."""
    with _lock:
        _ADDRESSES.setdefault(name, compiled.address)
        library = compiled._library
        obj = getattr(library, "_compiled_object", None)
        loader = _loader()
        if obj and loader is not None and sys.platform.startswith("linux"):
            loader.save(name, compiled._wrapper_name, bytes(obj))
    return _ADDRESSES[name]


# -- a background compilation for a cold cache -----------------------------------------
#: what a background helper compiles: the epoch (the longest compilation, a third
#: of a cold default fit's), then a float64 classifier's prediction kernels; the
#: process that started it compiles its setting's epoch kernels meanwhile
BACKGROUND = (
    "c_epoch",
    "c_forward",
    "c_identity_bias_act_float64",
    "c_softmax_output_float64",
    "c_all_finite_float64",
)
#: the longest a process waits for a background compilation of one kernel
WAIT_S = 120.0


def compile_in_background(names=BACKGROUND):
    """Start compiling the C kernels ``names`` that the native cache lacks in a
    helper process (``python -m fastnet._runtime.background``), once per process.

    Called where a fit is coming (the estimators' first import, ``fastnet train``)
    and before the slow imports: with an empty cache the helper compiles while this
    process imports scikit-learn and reads its data, and then compiles the rest of
    its setting's kernels itself, side by side with the helper, on a second core.
    Numba's compiler holds the GIL, so only a second process runs two compilations
    at once. A kernel the helper owns is then waited for (:func:`wait_for`), not
    compiled twice; where the helper fails, this process compiles it as before.

    Nothing happens where the cache holds them all, off Linux (no native cache),
    or with ``FASTNET_BACKGROUND_COMPILE=0``. Helpers of several processes sharing
    a cache folder take turns (a lock file), so each kernel compiles once."""
    if "background" in _state:
        return
    with _lock:
        if "background" in _state:
            return
        _state["background"] = None
        if (
            os.environ.get("FASTNET_BACKGROUND_COMPILE", "1") == "0"
            or not sys.platform.startswith("linux")
            or not sys.executable
        ):
            return
        loader = _loader()
        if loader is None:
            return
        missing = [n for n in names if not os.path.exists(loader.path(n))]
        if not missing:
            return
        try:
            os.makedirs(loader.folder, exist_ok=True)
            helper = subprocess.Popen(
                [sys.executable, "-m", "fastnet._runtime.background", *missing],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        except OSError:  # a folder that cannot be written, no interpreter to run
            return
        _state["background"] = (os.getpid(), helper, frozenset(missing))


def _helper_for(name):
    """This process's background helper, where it compiles ``name``; else None."""
    started = _state.get("background")
    if started and started[0] == os.getpid() and name in started[2]:
        return started[1]
    return None


def in_background(name):
    """Whether a background helper of this process compiles ``name``."""
    return _helper_for(name) is not None


def wait_for(name):
    """The address of ``name`` once the background helper has written it; None
    where no helper compiles it, the helper ended without it, or it took longer
    than :data:`WAIT_S` (the caller then compiles it)."""
    helper = _helper_for(name)
    if helper is None:
        return None
    deadline = time.monotonic() + WAIT_S
    while True:
        address = lookup(name)
        if address is not None:
            return address
        if helper.poll() is not None or time.monotonic() > deadline:
            return lookup(name)
        time.sleep(0.005)


# -- the whole-network kernels' names and calls ---------------------------------------
#: columns of the epoch's layer table: addresses of each layer's weights, bias,
#: their gradients, and the optimizer's first and second slot for each (0: none)
LAYER_COLUMNS = ("W", "b", "gW", "gb", "s1W", "s2W", "s1b", "s2b")
#: output of the forward kernel: 0 identity, 1 softmax, 2 logistic
OUT_KINDS = {"identity": 0, "softmax": 1, "logistic": 2}
#: the activations whose backward reads the input (the others read the output);
#: ``kernels.ACTIVATIONS[name].saves`` (a test checks they agree)
SAVES_X = frozenset({"gelu", "gelu_tanh", "leaky_relu"})


_DTYPE_NAMES = {np.dtype(np.float32): "float32", np.dtype(np.float64): "float64"}


def dtype_name(dtype):
    dtype = np.dtype(dtype)
    name = _DTYPE_NAMES.get(dtype)  # (a dict, not dtype.name: 7 us per fit)
    if name is None:
        raise TypeError(f"the network kernels take float32 or float64, not {dtype}")
    return name


def epoch_names(activation, loss, optimizer, dtype):
    """The C kernels of an epoch (the order of ``kernels.mlp.EPOCH_FNS``)."""
    d = dtype_name(dtype)
    return [
        f"c_{activation}_bias_act_{d}",
        f"c_{activation}_act_backward_{d}",
        f"c_{loss}_{d}",
        f"c_{optimizer}_{d}",
        f"c_sum_squares_{d}",
    ]


def forward_names(activation, out_kind, dtype):
    """The C kernels of a forward pass (``kernels.mlp.FORWARD_FNS``; None: none)."""
    d = dtype_name(dtype)
    out = None if out_kind == "identity" else f"c_{out_kind}_output_{d}"
    return [
        f"c_{activation}_bias_act_{d}",
        f"c_identity_bias_act_{d}",
        out,
        f"c_all_finite_{d}",
    ]


def _mlp():
    """``fastnet.kernels.mlp``, imported (with Numba) with the garbage collector
    paused (``fastnet._import``, which also waits for another thread's import of
    it: a module listed in ``sys.modules`` may still be half-imported)."""
    from .. import _import

    return _import("kernels.mlp")


def _addresses(names):
    found = [lookup(n) if n is not None else 0 for n in names]
    return None if None in found else np.array(found, np.int64)


def callbacks(activation, loss, optimizer, dtype):
    """The addresses (int64 array) of an epoch's C kernels, loaded natively where
    all are cached, else compiled (or loaded) by Numba."""
    found = _addresses(epoch_names(activation, loss, optimizer, dtype))
    if found is None:
        found = _mlp().callbacks(activation, loss, optimizer, dtype)
    return found


def forward_callbacks(activation, out_kind, dtype):
    """:func:`callbacks` for a forward pass."""
    found = _addresses(forward_names(activation, out_kind, dtype))
    if found is None:
        found = _mlp().forward_callbacks(activation, out_kind, dtype)
    return found


def _function(name, restype, argtypes):
    """The C kernel ``name`` as a ``ctypes`` function (which releases the GIL while
    it runs, as Numba's ``nogil`` kernels do)."""
    return ctypes.CFUNCTYPE(restype, *argtypes)(ensure(name))


def ensure(name):
    """The address of the C kernel ``name`` (a ``kernels.mlp.makers`` name): from
    this process or the native cache, from this process's background helper, else
    compiled (or loaded) by Numba, which is imported only then."""
    return lookup(name) or wait_for(name) or _mlp().compile_named(name)


_I, _F = ctypes.c_int64, ctypes.c_double


def epoch_kernel():
    """``kernels.mlp``'s epoch as a C function (its arguments: ``_epoch_c``)."""
    if "epoch" not in _state:
        argtypes = [_I] * 17 + [_F] * 4 + [_I] * 6
        _state["epoch"] = _function("c_epoch", _I, argtypes)
    return _state["epoch"]


def forward_kernel():
    """``kernels.mlp``'s forward as a C function (its arguments: ``_forward_c``)."""
    if "forward" not in _state:
        argtypes = [_I] * 9 + [_F] + [_I] * 3
        _state["forward"] = _function("c_forward", _I, argtypes)
    return _state["forward"]


def all_finite(x):
    """True when no element of the C-contiguous float32 or float64 array ``x`` is
    NaN or infinite (``kernels.util.all_finite``, as a C kernel)."""
    name = f"c_all_finite_{dtype_name(x.dtype)}"
    fn = _state.get(name)
    if fn is None:
        fn = _state[name] = _function(name, _I, [_I, _I])
    return x.size == 0 or bool(fn(address(x), x.size))


_c_char = ctypes.c_char
_addressof = ctypes.addressof


def address(a):
    """The data address of the C-contiguous array ``a``: through the buffer protocol
    where ``a`` is writeable and not empty (0.55 us here, against 2.3 us for
    ``a.ctypes.data``, which a one-row prediction paid three times)."""
    try:
        return _addressof(_c_char.from_buffer(a))
    except (TypeError, ValueError, BufferError):  # read-only, or empty
        return a.ctypes.data


def dtype_args(dtype):
    """The kernels' description of ``dtype``: ``(kind, item, one)``: its BLAS
    letter's code, its size in bytes, and an array holding 1 and 0 in it, whose
    address (``one.ctypes.data``) the kernels take; the caller keeps it alive."""
    dtype = np.dtype(dtype_name(dtype))
    kind = ord("s") if dtype == np.float32 else ord("d")
    return kind, dtype.itemsize, np.array([1.0, 0.0], dtype)


def block_offsets(dims, rows, hidden_too):
    """Where each layer's ``rows x width`` block starts in a flat workspace, in
    elements (int64): one block per layer, then one per hidden layer when
    ``hidden_too``; the last entry is the workspace's size."""
    widths = [int(w) for w in dims[1:]]
    widths += widths[:-1] if hidden_too else []
    # Python's integers, not NumPy's cumsum: a Trainer.fit call builds two of these
    return np.array([0, *itertools.accumulate(w * rows for w in widths)], np.int64)
