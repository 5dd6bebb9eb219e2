"""The environment of a fresh process in the native-cache tests."""

import os


def fresh_env(cache, **extra):
    """This process's environment with the kernel cache at ``cache`` (no
    ``NUMBA_CACHE_DIR``, which would win), plus ``extra``."""
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in ("NUMBA_CACHE_DIR", "FASTNET_CACHE_DIR")
    }
    return {**base, "FASTNET_CACHE_DIR": str(cache), **extra}


def script_env():
    """This process's environment, for ``python -m tests.X`` from the clone's root:
    the root on ``PYTHONPATH`` (``PYTHONSAFEPATH``, set by ``tests/__init__``, keeps
    the working folder out of the path; ``tests/__init__`` keeps the root out when
    importing fastnet)."""
    from tests import ROOT

    return {**os.environ, "PYTHONPATH": str(ROOT)}
