"""The test suite imports the installed fastnet, however it was installed.

``kernels/`` becomes ``fastnet.kernels`` only when installed (a ``package-dir``
mapping), so the clone's ``fastnet/`` folder is not a whole package. pytest puts
the clone's root on ``sys.path`` (to import ``tests.*``), where it would shadow an
installed (non-editable) fastnet: ``fastnet`` is imported here, first, with the
clone's root left out of the path. An editable install maps ``fastnet`` back to this
clone through its own finder; a regular one is found in site-packages.

With a regular install, its folder is also put first on ``sys.path``, which
processes spawned by multiprocessing (Dask's workers) inherit.

Subprocesses started by the tests get ``PYTHONSAFEPATH=1`` (Python 3.11+), so that
``python -c`` and ``python -m`` in the clone's folder do not put it first either;
``python -m tests.X`` is given the root through ``PYTHONPATH`` and comes here.
"""

import os
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _is_root(entry):
    try:
        return pathlib.Path(entry or os.curdir).resolve() == ROOT
    except OSError:
        return False


def _import_installed_fastnet():
    if "fastnet" in sys.modules:
        return
    saved = sys.path[:]
    sys.path[:] = [p for p in sys.path if not _is_root(p)]
    try:
        import fastnet
    except ImportError as exc:
        raise ImportError(
            "the tests need fastnet installed: pip install -e '.[test]' (or "
            "pip install . && pip install pytest hypothesis)"
        ) from exc
    finally:
        sys.path[:] = saved
    installed = pathlib.Path(fastnet.__file__).resolve().parents[1]
    if installed != ROOT:
        # a regular install: its folder goes before the clone's, for the processes
        # that inherit this path (Dask's and multiprocessing's spawned workers)
        sys.path.insert(0, str(installed))


_import_installed_fastnet()
os.environ.setdefault("PYTHONSAFEPATH", "1")
