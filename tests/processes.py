"""The environment of a fresh process in the native-cache tests."""

import os
import subprocess
import sys


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


def python_lines(code, env, timeout=600, **run):
    """``python -c code`` in ``env`` (``run``: more of ``subprocess.run``'s
    arguments, such as ``cwd``): its output lines, after checking it exited with 0
    (else its error's tail)."""
    run = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        **run,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout.splitlines()


def pythons_at_once(code, env, n=2, timeout=600, **popen):
    """``n`` processes ``python -c code`` started together in ``env``: their
    outputs, after checking that each exited with 0."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            **popen,
        )
        for _ in range(n)
    ]
    outs = [p.communicate(timeout=timeout) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-2000:]
    return [out for out, _ in outs]


def start_training_script(path, epochs, sleep):
    """``python -m tests.train_script path epochs sleep``, started (a Trainer
    writing a checkpoint to ``path`` every epoch, sleeping ``sleep`` s each)."""
    from tests import ROOT

    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.train_script",
            str(path),
            str(epochs),
            str(sleep),
        ],
        cwd=ROOT,
        env=script_env(),
    )
