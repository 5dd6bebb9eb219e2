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
this CPU's name and features (and Numba's settings that change code). Each is a
record (``kernels/_paths.py``, written atomically) that proves what it is: its
fields are the symbol, the digest of the object code, the kernel's name, the source
hash and the machine key, and a digest binds them to the code. The loader checks
every field against the kernel it asked for, and that the symbol is Numba's wrapper
of that kernel and defined in the object: a file copied from another kernel (whose
code would silently compute another function, or crash on other arguments), a
damaged one, or anything not a regular file is a miss, compiled again and
rewritten, with one warning per process. Not thread-safe:
``fastnet._runtime.addresses`` holds a lock.
"""

import ctypes
import hashlib
import os
import struct

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
        self.machine = machine_key(llvm, llvmlite.__version__)
        self.folder = os.path.join(
            _paths.cache_dir(), _paths.SOURCE_HASH, f"native-{self.machine}"
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

    def _fields(self, name, symbol, obj):
        """A record's fields for ``name``'s object code ``obj`` defining ``symbol``."""
        digest = hashlib.sha256(obj).hexdigest()
        return [symbol, digest, name, _paths.SOURCE_HASH, self.machine]

    def _read(self, name):
        """``(symbol, object code)`` of ``name``'s file, every field checked; None
        where there is no file; :class:`~fastnet.kernels._paths.Damaged` where it
        is not ``name``'s object for this source and machine."""
        found = _paths.read_record(self.path(name))
        if found is None:
            return None
        fields, obj = found
        symbol = fields[0]
        if fields != self._fields(name, symbol, obj):
            raise _paths.Damaged(f"{self.path(name)}: not this kernel's record")
        if not defines_kernel(obj, symbol, name):
            raise _paths.Damaged(f"{self.path(name)}: not this kernel's code")
        return symbol, obj

    def load(self, name):
        """The address of the C kernel ``name`` from its object file, or None."""
        try:
            found = self._read(name)
            needed = undefined_symbols(found[1]) if found else ()
        except ValueError as exc:  # (Damaged too)
            _paths.warn_damaged(exc)
            found = None
        if found is None:
            self.refresh.add(name)
            return None
        symbol, obj = found
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
        atomically. An object this folder could not load back is not written; a
        folder that cannot be written (a full disk) gives one warning per process."""
        try:
            if not defines_kernel(obj, symbol, name):
                return
        except ValueError:
            return
        try:
            os.makedirs(self.folder, exist_ok=True)
            _paths.write_record(self.path(name), self._fields(name, symbol, obj), obj)
        except OSError as exc:
            _paths.warn_unwritable(exc)


def undefined_symbols(obj):
    """The names of the symbols the ELF 64-bit little-endian object ``obj``
    references but does not define; a ``ValueError`` for anything else."""
    return [name for name, defined in _symbols(obj) if not defined]


def defines_kernel(obj, symbol, name):
    """Whether the ELF object ``obj`` defines ``symbol``, and ``symbol`` is Numba's
    C wrapper of the kernel ``name``; a ``ValueError`` for anything not an ELF64
    little-endian object."""
    defined = {found for found, is_defined in _symbols(obj) if is_defined}
    return symbol in defined and _numba_internals.wraps_kernel(symbol, name)


def _symbols(obj):
    """``(name, defined)`` of each named symbol of the ELF 64-bit little-endian
    object ``obj``; a ``ValueError`` for anything else."""
    if len(obj) < 64 or obj[:4] != b"\x7fELF" or obj[4] != 2 or obj[5] != 1:
        raise ValueError("not an ELF64 little-endian object")
    try:
        (shoff,) = struct.unpack_from("<Q", obj, 0x28)
        shentsize, shnum = struct.unpack_from("<HH", obj, 0x3A)
        sections = [
            struct.unpack_from("<IIQQQQIIQQ", obj, shoff + i * shentsize)
            for i in range(shnum)
        ]
        found = []
        for _, kind, _, _, offset, size, link, _, _, entsize in sections:
            if kind != 2:  # SHT_SYMTAB
                continue
            strings = sections[link][4]
            for j in range(1, size // entsize):
                at, _, _, shndx, _, _ = struct.unpack_from(
                    "<IBBHQQ", obj, offset + j * entsize
                )
                if at:  # named; SHN_UNDEF (0): referenced, not defined
                    end = obj.index(b"\0", strings + at)
                    found.append((obj[strings + at : end].decode(), shndx != 0))
    except (struct.error, IndexError, ZeroDivisionError) as exc:
        raise ValueError(f"not a readable ELF64 object ({exc})") from None
    return found
