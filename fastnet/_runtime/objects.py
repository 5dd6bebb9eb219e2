"""Object files of compiled C kernels: written after a compilation, loaded without
Numba.

A default fit runs one compiled epoch and five small C kernels; a prediction, one
forward and two or three C kernels (``kernels/mlp_cfuncs.py``). They are Numba
``cfunc`` kernels: plain C functions over addresses and numbers. When Numba compiles
one, its object code (ELF, as LLVM emitted it for this CPU) is written to a folder
beside Numba's own cache; a later process loads it with llvmlite's MCJIT alone and
calls it through ``ctypes``, without importing Numba, whose import, target
initialisation and objects' walk by the garbage collector at exit were a large
part of a warm first fit (``python bench/startup.py``).

The code needs a few symbols from outside itself: Python's C API and the C library
(found in the process), Numba's GIL helpers and its runtime's destructor call (on
error paths) and Numba's entry to SciPy's BLAS (``numba_xxgemm``), all taken from
Numba's two extension modules, loaded as files without Numba's package
(``kernels/_numba_internals.py``). Before an object is added, every symbol it
leaves undefined is resolved, or the object is not used: MCJIT aborts the process
on an unresolved symbol.

Files are keyed by the kernels' source hash, Numba's and llvmlite's versions, and
this CPU's name and features (and Numba's settings that change code), and are
written atomically (a temporary file, then a rename), so processes sharing the
folder stay safe. Not thread-safe: ``fastnet._runtime.addresses`` holds a lock.
"""

import ctypes
import hashlib
import os
import struct
import threading

from ..kernels import _numba_internals, _paths


def machine_key(llvm, llvmlite_version):
    """A short hash of what the object code depends on besides the source: the
    versions of llvmlite and Numba, this CPU, and Numba's settings that change the
    code it emits."""
    key = [
        llvmlite_version,
        _numba_internals.version_file().decode(),
        llvm.get_process_triple(),
        llvm.get_host_cpu_name(),
        llvm.get_host_cpu_features().flatten(),
    ]
    settings = ("NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES", "NUMBA_OPT",
                "NUMBA_BOUNDSCHECK")  # fmt: skip
    key += [os.environ.get(k, "") for k in settings]
    return hashlib.sha1(repr(key).encode()).hexdigest()[:12]


class ObjectFolder:
    """The folder of this machine's object files, and one MCJIT engine for the
    process that loads them with the symbols they may use."""

    def __init__(self):
        import llvmlite
        import llvmlite.binding as llvm

        self.llvm = llvm
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        machine = machine_key(llvm, llvmlite.__version__)
        self.folder = os.path.join(
            _paths.cache_dir(), _paths.SOURCE_HASH, f"native-{machine}"
        )
        self.symbols = {}
        self.engine = None
        self.process = ctypes.CDLL(None)
        #: names whose file is missing or damaged (not those needing a symbol
        #: this process lacks: compiling again would give the same file)
        self.refresh = set()

    def _resolve(self, name):
        if not self.symbols:
            self.symbols.update(_numba_internals.c_helper_symbols())
        if name in self.symbols:
            return self.symbols[name]
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
            needed = undefined_symbols(obj)
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
            undefined_symbols(obj)  # an object this folder can read back
            os.makedirs(self.folder, exist_ok=True)
            path = self.path(name)
            temporary = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
            header = f"{symbol} {hashlib.sha256(obj).hexdigest()}\n"
            with open(temporary, "wb") as f:
                f.write(header.encode() + obj)
            os.replace(temporary, path)
        except (OSError, ValueError, struct.error):
            pass


def undefined_symbols(obj):
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
