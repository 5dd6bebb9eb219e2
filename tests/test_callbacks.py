"""fastnet.callbacks with Trainer: each callback against a reference computed apart
(by hand from the History, or an uninterrupted run), the hooks' order and counts,
and the keyword arguments that build callbacks."""

import math
import pickle
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits

import fastnet as fn
from tests.train_script import data, make_trainer


def digits_split():
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    return X[:1400], y[:1400], X[1400:], y[1400:]


def mlp(seed=0, hidden=32, n_out=10):
    return fn.Sequential(
        fn.Linear(64, hidden, random_state=seed),
        fn.ReLU(),
        fn.Linear(hidden, n_out, random_state=seed + 1),
    )


def trainer(model=None, lr=1e-3, **kwargs):
    kwargs = {"batch_size": 64, "epochs": 3, "random_state": 0, **kwargs}
    model = mlp() if model is None else model
    return fn.Trainer(model, fn.SoftmaxCrossEntropy(), fn.optim.Adam(lr=lr), **kwargs)


class Snapshots(fn.callbacks.Callback):
    """The weights after each epoch, keyed by the epoch (from 0)."""

    def __init__(self):
        self.weights = {}

    def on_epoch_end(self, trainer, state):
        self.weights[state.epoch - 1] = {
            k: v.copy() for k, v in trainer.model.params.items()
        }


def stop_by_hand(values, patience, tol):
    """(the epoch early stopping ends after, the best epoch) by its rule."""
    best, bad, best_epoch = math.inf, 0, None
    for epoch, value in enumerate(values):
        if value < best - tol:
            best, bad, best_epoch = value, 0, epoch
        else:
            bad += 1
        if bad >= patience:
            return epoch, best_epoch
    return len(values) - 1, best_epoch


def assert_same_weights(a, b):
    for k, v in a.model.params.items():
        np.testing.assert_array_equal(v, b.model.params[k])


def test_public_module_and_history_paths():
    import fastnet.callbacks
    import fastnet.train
    import fastnet.training.callbacks as module
    import fastnet.training.trainer

    assert fn.callbacks is fastnet.callbacks is module
    for name in ("Callback", "EarlyStopping", "Checkpoint", "ProgressBar", "History"):
        assert getattr(fn.callbacks, name) is getattr(module, name)
    assert fn.History is fastnet.training.trainer.History is fastnet.train.History
    assert fn.History is module.History
    hist = trainer(epochs=2).fit(*data())
    clone = pickle.loads(pickle.dumps(hist))
    assert isinstance(clone, fn.History) and clone.loss == hist.loss


@pytest.mark.parametrize("validation", [False, True])
def test_early_stopping_stops_where_its_rule_says_and_restores_the_best(validation):
    Xtr, ytr, Xva, yva = digits_split()
    snapshots = Snapshots()
    patience, tol = 2, 0.02
    t = trainer(
        lr=0.05,
        batch_size=16,
        epochs=100,
        validation_data=(Xva, yva) if validation else None,
        callbacks=[fn.callbacks.EarlyStopping(patience, tol), snapshots],
    )
    hist = t.fit(Xtr, ytr)
    monitored = hist.val_loss if validation else hist.loss
    last, best = stop_by_hand(monitored, patience, tol)
    assert len(hist.loss) == last + 1 < 100
    assert hist.best_epoch == best
    assert hist.stop_reason == f"no improvement of {tol} in {patience} epochs"
    for k, v in t.model.params.items():
        np.testing.assert_array_equal(v, snapshots.weights[best][k])


def test_early_stopping_callback_equals_the_keyword_arguments():
    Xtr, ytr, Xva, yva = digits_split()
    kwargs = {
        "lr": 0.05,
        "batch_size": 16,
        "epochs": 100,
        "validation_data": (Xva, yva),
    }
    by_keyword = trainer(early_stopping=True, patience=3, tol=1e-3, **kwargs)
    by_callback = trainer(
        callbacks=[fn.callbacks.EarlyStopping(patience=3, tol=1e-3)], **kwargs
    )
    a, b = by_keyword.fit(Xtr, ytr), by_callback.fit(Xtr, ytr)
    assert a.stop_reason is not None and len(a.loss) < 100
    assert (a.loss, a.val_loss, a.val_score, a.best_epoch, a.stop_reason) == (
        b.loss, b.val_loss, b.val_score, b.best_epoch, b.stop_reason,
    )  # fmt: skip
    assert_same_weights(by_keyword, by_callback)


def test_early_stopping_options():
    X, y = data()
    snapshots = Snapshots()
    # patience=None only tracks; restore_best=False keeps the last weights
    t = trainer(
        epochs=4,
        callbacks=[
            fn.callbacks.EarlyStopping(None, monitor="loss", restore_best=False),
            snapshots,
        ],
    )
    hist = t.fit(X, y)
    assert len(hist.loss) == 4 and hist.stop_reason is None
    assert hist.best_epoch == stop_by_hand(hist.loss, 10**9, 1e-4)[1]
    for k, v in t.model.params.items():
        np.testing.assert_array_equal(v, snapshots.weights[3][k])
    with pytest.raises(ValueError, match="needs validation_data"):
        trainer(callbacks=[fn.callbacks.EarlyStopping(monitor="val_loss")]).fit(X, y)
    with pytest.raises(ValueError, match="monitor"):
        fn.callbacks.EarlyStopping(monitor="accuracy")
    with pytest.raises(ValueError, match="patience"):
        fn.callbacks.EarlyStopping(patience=0)
    with pytest.raises(ValueError, match="tol"):
        fn.callbacks.EarlyStopping(tol=-1)


class Recorder(fn.callbacks.Callback):
    """Every hook call, with what the state said then."""

    def __init__(self):
        self.calls = []

    def on_fit_begin(self, trainer, state):
        self.calls.append(("fit_begin", state.epoch))

    def on_epoch_begin(self, trainer, state):
        self.calls.append(("epoch_begin", state.epoch))

    def on_epoch_end(self, trainer, state):
        history = state.extra["history"]
        # the History has the epoch already, and the state its loss
        assert len(history.loss) == state.epoch and history.loss[-1] == state.loss
        self.calls.append(("epoch_end", state.epoch))

    def on_fit_end(self, trainer, state):
        self.calls.append(("fit_end", state.epoch))


class BatchRecorder(Recorder):
    def on_batch_end(self, trainer, state):
        assert math.isfinite(state.batch_loss)
        self.calls.append(("batch_end", state.batch, state.batch_rows))


def test_hooks_are_called_in_the_documented_order_and_count():
    X, y = data()  # 1797 rows: 28 batches of 64 and one of 5
    epochs = 3
    plain, batches = Recorder(), BatchRecorder()
    trainer(epochs=epochs, callbacks=[plain]).fit(X, y)
    trainer(epochs=epochs, callbacks=[batches]).fit(X, y)
    want = [("fit_begin", 0)]
    for e in range(epochs):
        want += [("epoch_begin", e), ("epoch_end", e + 1)]
    want += [("fit_end", epochs)]
    assert plain.calls == want
    want_batches = [("fit_begin", 0)]
    for e in range(epochs):
        want_batches.append(("epoch_begin", e))
        want_batches += [("batch_end", k, 64) for k in range(28)]
        want_batches += [("batch_end", 28, 5), ("epoch_end", e + 1)]
    want_batches += [("fit_end", epochs)]
    assert batches.calls == want_batches


def test_a_batch_hook_takes_the_module_path_with_the_compiled_paths_bits():
    X, y = data()
    counted = BatchRecorder()
    compiled = trainer(epochs=3)
    module = trainer(epochs=3, callbacks=[counted])
    compiled.fit(X, y)
    module.fit(X, y)
    # the hook saw every batch, which only the module path shows
    assert sum(c[0] == "batch_end" for c in counted.calls) == 3 * 29
    assert compiled.history.loss == module.history.loss
    assert_same_weights(compiled, module)


def test_a_hook_returning_true_stops_and_is_named():
    X, y = data()

    class StopAtTwo(fn.callbacks.Callback):
        def on_epoch_end(self, trainer, state):
            return state.epoch == 2

    class Says(fn.callbacks.Callback):
        def on_epoch_end(self, trainer, state):
            state.stop_reason = "enough"
            return True

    after = Recorder()
    hist = trainer(epochs=10, callbacks=[StopAtTwo(), after]).fit(X, y)
    assert len(hist.loss) == 2 and hist.stop_reason == "callback 'StopAtTwo'"
    # the callbacks after the one that stopped still saw the epoch
    assert after.calls[-2:] == [("epoch_end", 2), ("fit_end", 2)]
    assert trainer(epochs=10, callbacks=[Says()]).fit(X, y).stop_reason == "enough"

    def halt(trainer, epoch, history):  # a plain callable, as before callbacks
        return epoch == 0

    hist = trainer(epochs=10, callbacks=[halt]).fit(X, y)
    assert len(hist.loss) == 1 and hist.stop_reason == "callback 'halt'"


def test_checkpoint_callback_and_resume_equal_an_uninterrupted_run(tmp_path):
    X, y = data()
    straight = make_trainer()
    straight.fit(X, y)
    path = tmp_path / "ckpt.npz"
    first = make_trainer(callbacks=[fn.callbacks.Checkpoint(path)])
    first.epochs = 3  # as if interrupted after the third epoch
    first.fit(X, y)
    resumed = make_trainer(callbacks=[fn.callbacks.Checkpoint(path)])
    hist = resumed.fit(X, y, resume=True)
    assert hist.loss == straight.history.loss
    assert hist.best_epoch == straight.history.best_epoch
    assert_same_weights(straight, resumed)
    # the keyword argument writes the same file as the callback
    keyword = tmp_path / "keyword.npz"
    make_trainer(checkpoint=keyword).fit(X, y)
    make_trainer(callbacks=[fn.callbacks.Checkpoint(path)]).fit(X, y)
    with np.load(path) as a, np.load(keyword) as b:
        assert a.files == b.files
        for name in a.files:
            if name != "__meta__":
                np.testing.assert_array_equal(a[name], b[name])


def test_progress_bar_is_verbose(capsys):
    X, y = data()
    compiled = trainer(epochs=2)
    compiled.fit(X, y)
    lines = []
    for kwargs in ({"verbose": True}, {"callbacks": [fn.callbacks.ProgressBar()]}):
        shown = trainer(epochs=2, **kwargs)
        shown.fit(X, y)
        assert_same_weights(compiled, shown)
        err = capsys.readouterr().err
        lines.append([s.split(", ")[0] for s in err.splitlines() if ": loss" in s])
        assert "samples/s" in err
    assert lines[0] == lines[1]
    assert lines[0] == [
        f"epoch {e + 1}/2: loss {loss:.4g}"
        for e, loss in enumerate(compiled.history.loss)
    ]


def test_fit_end_runs_after_a_non_finite_loss():
    X, y = data()
    seen = Recorder()
    t = fn.Trainer(
        mlp(n_out=1), fn.MSELoss(), fn.optim.SGD(lr=10.0), epochs=50, random_state=0,
        callbacks=[seen],
    )  # fmt: skip
    with pytest.warns(RuntimeWarning, match="NaN or infinite"):
        hist = t.fit(X, y.astype(np.float32).reshape(-1, 1))
    assert hist.stop_reason == "non-finite loss"
    assert seen.calls[-1][0] == "fit_end"


@pytest.mark.parametrize(
    "callbacks,words",
    [
        ([object()], "callables cb.* got <object object"),
        ([3], "got 3"),
        (fn.callbacks.EarlyStopping(), "a list of callbacks"),
    ],
)
def test_what_is_not_a_callback_is_a_type_error_naming_it(callbacks, words):
    with pytest.raises(TypeError, match=words):
        trainer(callbacks=callbacks)


def test_a_keyword_and_its_callback_are_one_too_many(tmp_path):
    cb = fn.callbacks
    for kwargs, given in (
        ({"early_stopping": True}, cb.EarlyStopping()),
        ({"verbose": True}, cb.ProgressBar()),
        ({"checkpoint": tmp_path / "a.npz"}, cb.Checkpoint(tmp_path / "b.npz")),
    ):
        with pytest.raises(ValueError, match="give one of them"):
            trainer(callbacks=[given], **kwargs)
    with pytest.raises(ValueError, match="resume"), warnings.catch_warnings():
        trainer(callbacks=[cb.ProgressBar()]).fit(*data(), resume=True)
