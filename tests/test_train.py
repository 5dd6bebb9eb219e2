"""Trainer: learning, stopping rules, faults, checkpoints and resume after SIGKILL."""

import gc
import os
import pickle
import signal
import time
import tracemalloc
import warnings

import numba
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import fastnet as fn
from tests.processes import start_training_script
from tests.train_script import data, make_trainer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def digits_split():
    X, y = load_digits(return_X_y=True)
    return train_test_split(
        (X / 16).astype(np.float32), y, test_size=0.25, random_state=0
    )


def mlp(seed=0, n_in=64, hidden=64, n_out=10):
    return fn.Sequential(
        fn.Linear(n_in, hidden, random_state=seed),
        fn.ReLU(),
        fn.Linear(hidden, n_out, random_state=seed + 1),
    )


def test_digits_reach_95_percent_in_30_epochs():
    Xtr, Xte, ytr, yte = digits_split()
    model = mlp()
    trainer = fn.Trainer(
        model,
        fn.SoftmaxCrossEntropy(),
        fn.optim.Adam(lr=1e-3),
        batch_size=32,
        epochs=30,
        random_state=0,
        validation_data=(Xte, yte),
    )
    hist = trainer.fit(Xtr, ytr)
    assert len(hist.loss) == 30 and len(hist.epoch_time) == 30
    assert hist.val_score[-1] >= 0.95
    accuracy = (model.forward(Xte, train=False).argmax(1) == yte).mean()
    assert accuracy == pytest.approx(hist.val_score[-1])
    assert hist.loss[-1] < hist.loss[0] / 5


def test_same_seed_same_weights_bit_for_bit():
    X, y = data()
    a, b = make_trainer(epochs=2), make_trainer(epochs=2)
    a.fit(X, y)
    b.fit(X, y)
    for k, v in a.model.params.items():
        np.testing.assert_array_equal(v, b.model.params[k])


def test_last_partial_batch_and_weights(rng):
    X = rng.standard_normal((70, 3))
    y = X @ np.array([[1.0], [-2.0], [0.5]])
    model = fn.Sequential(fn.Linear(3, 1, dtype=np.float64, random_state=0))
    hist = fn.Trainer(
        model,
        fn.MSELoss(),
        fn.optim.SGD(lr=0.1),
        batch_size=32,
        epochs=60,
        random_state=0,
    ).fit(X, y, sample_weight=np.full(70, 2.0))
    np.testing.assert_allclose(model.params["0.W"].ravel(), [1.0, -2.0, 0.5], atol=1e-3)
    assert hist.loss[-1] < 1e-6


def test_early_stopping_restores_the_best_weights():
    Xtr, Xte, ytr, yte = digits_split()
    snapshots = {}

    def remember(trainer, epoch, history):
        snapshots[epoch] = {k: v.copy() for k, v in trainer.model.params.items()}

    model = mlp()
    hist = fn.Trainer(
        model,
        fn.SoftmaxCrossEntropy(),
        fn.optim.Adam(lr=0.05),
        batch_size=16,
        epochs=200,
        random_state=0,
        validation_data=(Xte, yte),
        early_stopping=True,
        patience=3,
        callbacks=[remember],
    ).fit(Xtr, ytr)
    assert hist.stop_reason.startswith("no improvement")
    assert len(hist.loss) < 200
    best = int(np.argmin(hist.val_loss))
    assert hist.best_epoch == best
    for k, v in model.params.items():
        np.testing.assert_array_equal(v, snapshots[best][k])


def test_divergence_stops_with_a_warning_and_finite_weights():
    X, y = data()
    model = mlp(n_out=1)
    trainer = fn.Trainer(
        model, fn.MSELoss(), fn.optim.SGD(lr=10.0), epochs=50, random_state=0
    )
    with pytest.warns(RuntimeWarning, match="NaN or infinite"):
        hist = trainer.fit(X, y.astype(float).reshape(-1, 1))
    assert hist.stop_reason == "non-finite loss"
    assert len(hist.loss) < 50
    for v in model.params.values():
        assert np.isfinite(v).all()
    assert np.isfinite(model.forward(X, train=False)).all()


def test_callback_can_stop_and_verbose_prints(capsys):
    X, y = data()
    hist = fn.Trainer(
        mlp(),
        fn.SoftmaxCrossEntropy(),
        fn.optim.Adam(),
        epochs=10,
        random_state=0,
        verbose=True,
        callbacks=[lambda t, e, h: e == 1],
    ).fit(X, y)
    assert len(hist.loss) == 2 and "callback" in hist.stop_reason
    err = capsys.readouterr().err
    assert "epoch 2/10: loss" in err and "samples/s" in err


def test_n_threads_is_applied_and_restored():
    seen = []
    before = numba.get_num_threads()
    X, y = data()
    fn.Trainer(
        mlp(),
        fn.SoftmaxCrossEntropy(),
        fn.optim.Adam(),
        epochs=1,
        n_threads=1,
        callbacks=[lambda *a: seen.append(numba.get_num_threads())],
    ).fit(X, y)
    assert seen == [1] and numba.get_num_threads() == before


@pytest.mark.parametrize(
    "kwargs,exc,words",
    [
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"epochs": -1}, ValueError, "epochs"),
        ({"batch_size": 2.5}, TypeError, "batch_size"),
        ({"tol": -1}, ValueError, "tol"),
        ({"n_threads": 0}, ValueError, "n_threads"),
        ({"callbacks": [3]}, TypeError, "callables"),
    ],
)
def test_bad_settings(kwargs, exc, words):
    with pytest.raises(exc, match=words):
        fn.Trainer(mlp(), fn.SoftmaxCrossEntropy(), fn.optim.SGD(), **kwargs)


def test_bad_data():
    t = fn.Trainer(mlp(), fn.SoftmaxCrossEntropy(), fn.optim.SGD(), epochs=1)
    X, y = data()
    with pytest.raises(ValueError, match="NaN"):
        t.fit(np.where(X > 0.9, np.nan, X), y)
    with pytest.raises(ValueError, match="1797 samples but its targets have 10"):
        t.fit(X, y[:10])
    with pytest.raises(ValueError, match=r"\[0, 10\)"):
        t.fit(X, y + 5)
    with pytest.raises(ValueError, match="X has 5 features per sample, but the model"):
        t.fit(X[:, :5], y)
    with pytest.raises(ValueError, match="resume"):
        t.fit(X, y, resume=True)


def test_a_training_step_allocates_no_arrays(rng):
    # measured through the public API: a batch hook (which also puts the fit on the
    # module path) traces the memory taken between two later batches of an epoch
    X = rng.standard_normal((2048, 64)).astype(np.float32)
    y = rng.integers(0, 10, 2048)

    class Trace(fn.callbacks.Callback):
        peak = None

        def on_batch_end(self, trainer, state):
            if state.batch == 2:
                tracemalloc.start()
                self.start, _ = tracemalloc.get_traced_memory()
            elif state.batch == 6:
                _, peak = tracemalloc.get_traced_memory()
                tracemalloc.stop()
                self.peak = peak - self.start

    trace = Trace()
    trainer = fn.Trainer(
        mlp(hidden=128),
        fn.SoftmaxCrossEntropy(),
        fn.optim.Adam(),
        batch_size=256,
        epochs=1,
        random_state=0,
        callbacks=[trace],
    )
    trainer.fit(X, y)  # warm: buffers and optimizer state exist now
    trainer.fit(X, y)
    # The smallest per-step array would be 256 x 10 float32 = 10 KiB.
    assert trace.peak is not None and trace.peak < 8 * 1024, trace.peak


def test_checkpoint_and_resume_equal_an_uninterrupted_run(tmp_path):
    X, y = data()
    straight = make_trainer()
    straight.fit(X, y)
    path = tmp_path / "ckpt.npz"
    first = make_trainer(path, epochs=8)
    first.epochs = 3  # stop early, as if interrupted after epoch 3
    first.fit(X, y)
    resumed = make_trainer(path)
    hist = resumed.fit(X, y, resume=True)
    assert len(hist.loss) == 8
    np.testing.assert_array_equal(hist.loss, straight.history.loss)
    for k, v in straight.model.params.items():
        np.testing.assert_array_equal(resumed.model.params[k], v)


def test_resume_after_sigkill_equals_an_uninterrupted_run(tmp_path):
    X, y = data()
    straight = make_trainer()
    straight.fit(X, y)
    path = tmp_path / "ckpt.npz"
    proc = start_training_script(path, 8, 0.4)
    try:
        deadline = time.monotonic() + 120
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.6)  # into a later epoch, possibly mid-save
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert path.exists()
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "ckpt.npz"]
    resumed = make_trainer(path)
    hist = resumed.fit(X, y, resume=True)
    assert len(hist.loss) == 8
    for k, v in straight.model.params.items():
        np.testing.assert_array_equal(resumed.model.params[k], v)
    # a kill during a save may leave a temporary file, never a corrupt checkpoint
    assert all(name.startswith(".fastnet-") for name in leftovers)


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "ckpt.npz"
    path.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match=r"not an \.npz file: truncated, corrupt"):
        make_trainer(path).fit(*data(), resume=True)


def test_checkpoint_of_another_model_is_rejected(tmp_path):
    path = tmp_path / "ckpt.npz"
    make_trainer(path, epochs=1).fit(*data())
    other = fn.Trainer(
        mlp(hidden=16),
        fn.SoftmaxCrossEntropy(),
        fn.optim.Adam(),
        epochs=2,
        checkpoint=path,
    )
    with warnings.catch_warnings(), pytest.raises(ValueError, match="does not match"):
        other.fit(*data(), resume=True)


@pytest.mark.parametrize(
    "make",
    [
        lambda: (mlp(), fn.SoftmaxCrossEntropy(), fn.optim.Adam(lr=1e-3)),
        lambda: (
            fn.Sequential(
                fn.Linear(64, 16, random_state=0),
                fn.GELU(),
                fn.Linear(16, 16, random_state=1),
                fn.GELU(),
                fn.Linear(16, 10, random_state=2),
            ),
            fn.SoftmaxCrossEntropy(),
            fn.optim.SGD(lr=0.05, momentum=0.9, nesterov=True),
        ),
        lambda: (mlp(n_out=1), fn.MSELoss(), fn.optim.Adam(lr=1e-3)),
    ],
)
def test_fused_epoch_equals_the_module_path_bit_for_bit(make, monkeypatch):
    X, y = data()
    model, loss, opt = make()
    if isinstance(loss, fn.MSELoss):
        y = y.reshape(-1, 1) / 9.0
    fused = fn.Trainer(model, loss, opt, batch_size=50, epochs=3, random_state=0)
    assert fused._fused_epoch(*fused._prepare(X, y, None, "X")) is not None
    fused.fit(X, y)
    model2, loss2, opt2 = make()
    monkeypatch.setattr(fn.Trainer, "_fused_epoch", lambda *a: None)
    plain = fn.Trainer(model2, loss2, opt2, batch_size=50, epochs=3, random_state=0)
    plain.fit(X, y)
    assert fused.history.loss == plain.history.loss
    for k, v in model.params.items():
        np.testing.assert_array_equal(v, model2.params[k])


def test_fused_epoch_refuses_targets_its_loss_would_misread():
    # targets cross to the loss kernel as bytes: their type is checked first
    from fastnet._runtime.mlp import fused_epoch

    X, y = data()
    model = mlp()
    linears = [m for m in model.modules if isinstance(m, fn.Linear)]
    names = [(f"{i}.W", f"{i}.b") for i in range(len(linears))]
    for bad, want in ((y.astype(np.int32), "int64"), (np.eye(10)[y], "float32")):
        with pytest.raises(ValueError, match=f"needs {want} targets"):
            fused_epoch(
                linears,
                model.modules[1],
                names,
                fn.SoftmaxCrossEntropy(),
                fn.optim.Adam(),
                X,
                bad,
                50,
            )


def test_fused_epoch_checks_its_row_order_unless_a_checked_one_is_permuted():
    # the kernel gathers rows without bounds checks: every order is checked, and
    # checked=True skips only the pass over values a permutation cannot change
    from fastnet._runtime.mlp import fused_epoch

    X, y = data()
    model = mlp()
    linears = [m for m in model.modules if isinstance(m, fn.Linear)]
    names = [(f"{i}.W", f"{i}.b") for i in range(len(linears))]
    epoch = fused_epoch(
        linears, model.modules[1], names, fn.SoftmaxCrossEntropy(),
        fn.optim.Adam(), X, y.astype(np.int64), 50,
    )  # fmt: skip
    n = X.shape[0]
    order = np.random.default_rng(0).permutation(n)
    epoch.check(order)
    assert np.isfinite(epoch(order, checked=True))
    bad_values = order.copy()
    bad_values[3] = n
    with pytest.raises(ValueError, match=f"int64 indices of {n} rows"):
        epoch(bad_values)
    with pytest.raises(ValueError, match=f"int64 indices of {n} rows"):
        epoch.check(-order)
    # the array itself is looked at whatever the caller says
    for bad in (order.astype(np.int32), order[::-1][::2], order[:-1], list(order)):
        with pytest.raises(ValueError, match=f"int64 indices of {n} rows"):
            epoch(bad, checked=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fit_checks_its_data_without_running_a_linear_chain(dtype):
    # a Sequential of Linear layers and activations has its output width read from
    # its layers (the model is not run on a row): the checks still say what is wrong
    X, y = data()
    X = X.astype(dtype)

    def trainer(model, loss=None):
        loss = loss or fn.SoftmaxCrossEntropy()
        return fn.Trainer(model, loss, fn.optim.Adam(), epochs=1, random_state=0)

    model = fn.Sequential(
        fn.Linear(64, 16, dtype=dtype, random_state=0),
        fn.Tanh(),
        fn.Linear(16, 10, dtype=dtype, random_state=1),
        fn.Sigmoid(),
    )
    assert trainer(model)._chain_output_width(X) == 10
    first = r"X has 63 features per sample, but the model's first Linear layer "
    with pytest.raises(ValueError, match=first + r"\(module 0\) takes 64"):
        trainer(model).fit(X[:, :63], y)
    inner = fn.Sequential(
        fn.Linear(64, 16, dtype=dtype), fn.Linear(15, 10, dtype=dtype)
    )
    chain = r"module 0 \(Linear\(64, 16, .*\)\) gives 16 features, but module 1 "
    chain += r"\(Linear\(15, 10, .*\)\) takes 15"
    with pytest.raises(ValueError, match=chain):
        trainer(inner).fit(X, y)
    # also where the layers cast (another dtype), and where an inner layer takes as
    # many features as X has (the message named the first layer)
    other = np.float64 if dtype == np.float32 else np.float32
    inner = fn.Sequential(fn.Linear(64, 16, dtype=other), fn.Linear(15, 10))
    with pytest.raises(ValueError, match=chain):
        trainer(inner).fit(X, y)
    inner = fn.Sequential(
        fn.Linear(64, 16, dtype=dtype),
        fn.ReLU(),
        fn.Linear(16, 8, dtype=dtype),
        fn.Linear(64, 3, dtype=dtype),
    )
    chain = r"module 2 \(Linear\(16, 8, .*\)\) gives 8 features, but module 3 "
    with pytest.raises(ValueError, match=chain + r"\(Linear\(64, 3, .*\)\) takes 64"):
        trainer(inner).fit(X, y)
    # width-keeping modules between the layers: still named, not the one-row error
    for between in (fn.Dropout(0.1), fn.Softmax()):
        inner = fn.Sequential(
            fn.Linear(64, 16, dtype=dtype), between, fn.Linear(15, 10, dtype=dtype)
        )
        with pytest.raises(ValueError, match=r"module 0 .* but module 2 .* takes 15"):
            trainer(inner).fit(X, y)
        inner = fn.Sequential(
            fn.Linear(64, 16, dtype=dtype), between, fn.Linear(16, 10, dtype=dtype)
        )
        assert trainer(inner)._chain_output_width(X) is None  # runs the model
    mixed = fn.Sequential(fn.Linear(64, 16, dtype=other), fn.Linear(16, 10))
    assert trainer(mixed)._chain_output_width(X) is None  # the model casts: it tells
    # where the model itself tells, its one-sample shapes come with X's own
    X3 = np.ascontiguousarray(np.broadcast_to(X[:, None, :], (len(X), 2, 64)))
    with pytest.raises(ValueError, match=r"2-D.* first sample of X, whose shape is "
                       rf"\({len(X)}, 2, 64\)"):  # fmt: skip
        trainer(model).fit(X3, y)
    for bad_x in (np.ascontiguousarray(X), np.asfortranarray(X)):
        bad_x = bad_x.copy(order="K")
        bad_x[5, 7] = (np.nan, np.inf)[bad_x.flags.f_contiguous]
        with pytest.raises(ValueError, match="X contains NaN or infinity"):
            trainer(model).fit(bad_x, y)
    # the targets are checked against the width the layers give
    with pytest.raises(ValueError):
        trainer(model, fn.MSELoss()).fit(X, np.zeros((X.shape[0], 9), dtype))
    trainer(model, fn.MSELoss()).fit(X, np.zeros((X.shape[0], 10), dtype))
    # anything else is run on a row, as before
    for other in (
        fn.Sequential(fn.Linear(64, 10, dtype=dtype), fn.Dropout(0.5)),
        fn.Sequential(
            fn.Linear(64, 10, dtype=np.float32 if dtype == np.float64 else np.float64)
        ),
    ):
        assert trainer(other)._chain_output_width(X) is None


def test_fits_reuse_the_compiled_epochs_workspace_only_for_the_same_arrays(
    monkeypatch,
):
    # each fit call may reuse the previous call's table of addresses and workspace;
    # new parameter arrays, a new optimizer or another batch size make them anew,
    # and every fit stays bit-identical to the module path
    X, y = data()

    def pair(batch_size):
        out = []
        for _ in range(2):
            model = mlp()
            out.append(
                fn.Trainer(
                    model,
                    fn.SoftmaxCrossEntropy(),
                    fn.optim.Adam(lr=1e-3),
                    batch_size=batch_size,
                    epochs=1,
                    random_state=0,
                )
            )
        return out

    fused, plain = pair(50)
    plain._fused_epoch = lambda *a: None  # the module path
    states = []
    for step in range(6):
        if step == 2:  # new parameter arrays (other values) in both models
            for t in (fused, plain):
                for k, v in t.model.params.items():
                    t.model.modules[int(k.split(".")[0])].params[k.split(".")[1]] = (
                        v * 0.5
                    )
        if step == 3:  # a new optimizer: new state arrays
            fused.optimizer, plain.optimizer = fn.optim.Adam(), fn.optim.Adam()
        if step == 4:
            fused.batch_size = plain.batch_size = 64
        fused.fit(X, y)
        plain.fit(X, y)
        states.append(fused._fused_state)
        assert fused.history.loss == plain.history.loss
        for k, v in fused.model.params.items():
            np.testing.assert_array_equal(v, plain.model.params[k])
    same = [states[i] is states[i + 1] for i in range(5)]
    assert same == [True, False, False, False, True]
    clone = pickle.loads(pickle.dumps(fused))  # the workspace is not pickled
    assert "_fused_state" not in vars(clone)
    clone.fit(X, y)
    # only the network's part is kept between fits: never the data
    held = gc.get_referents(fused._fused_state, *vars(fused._fused_state).values())
    for a in held:
        for arr in a if isinstance(a, list | tuple) else [a]:
            assert not (isinstance(arr, np.ndarray) and np.shares_memory(arr, X))
