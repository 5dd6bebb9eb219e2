"""Checkpointed training killed with SIGKILL at several points resumes to the weights
of an uninterrupted run; a kill during a save never leaves a corrupt checkpoint."""

import os
import signal
import time

import numpy as np
import pytest

from tests.processes import start_training_script
from tests.train_script import data, make_trainer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def uninterrupted():
    trainer = make_trainer()
    trainer.fit(*data())
    return trainer.model.params


@pytest.mark.parametrize("delay", [0.05, 0.35, 0.8, 1.3])
def test_kill_at_a_random_point_then_resume(delay, uninterrupted, tmp_path):
    path = tmp_path / "ckpt.npz"
    proc = start_training_script(path, 8, 0.15)
    try:
        deadline = time.monotonic() + 120
        while not path.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.01)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    resumed = make_trainer(path)
    resumed.fit(*data(), resume=True)  # a corrupt checkpoint would raise here
    for k, v in uninterrupted.items():
        np.testing.assert_array_equal(resumed.model.params[k], v)
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "ckpt.npz"]
    assert all(name.startswith(".fastnet-") for name in leftovers)
