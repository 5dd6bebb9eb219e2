"""A small deterministic training run, importable by tests and runnable as a script.

    python -m tests.train_script CHECKPOINT EPOCHS SLEEP

runs it with a checkpoint, sleeping SLEEP seconds per epoch (so a test can kill it
part-way through).
"""

import sys
import time

import numpy as np
from sklearn.datasets import load_digits

import fastnet as fn


def data():
    X, y = load_digits(return_X_y=True)
    return (X / 16.0).astype(np.float32), y


def make_trainer(checkpoint=None, epochs=8, callbacks=()):
    model = fn.Sequential(
        fn.Linear(64, 32, random_state=0),
        fn.ReLU(),
        fn.Dropout(0.2, random_state=1),
        fn.Linear(32, 10, random_state=2),
    )
    opt = fn.optim.Adam(lr=1e-3, schedule=fn.optim.Cosine(t_max=epochs))
    return fn.Trainer(
        model,
        fn.SoftmaxCrossEntropy(),
        opt,
        batch_size=64,
        epochs=epochs,
        random_state=7,
        n_threads=1,
        checkpoint=checkpoint,
        callbacks=callbacks,
    )


if __name__ == "__main__":
    path, epochs, pause = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    trainer = make_trainer(path, epochs, callbacks=[lambda *a: time.sleep(pause)])
    trainer.fit(*data(), resume=True)
