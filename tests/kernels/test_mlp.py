"""The whole-network kernels: one compilation for any depth, dtype, target kind,
activation, loss and optimizer; and the checks in front of them."""

import subprocess
import sys
import warnings

import numpy as np
import pytest
from numba import njit

import fastnet as fn
from fastnet import kernels
from fastnet._runtime.c_kernels import callbacks
from fastnet._runtime.mlp import layer_table, network_dims
from fastnet.kernels.ffi import call_f64, call_void, view

SETTINGS = """
import warnings
import numpy as np
import fastnet as fn
from fastnet import kernels
rng = np.random.default_rng(0)
X = rng.standard_normal((120, 5))
y = rng.integers(0, 3, 120)
warnings.simplefilter("ignore")
for hidden in [(4,), (6, 5), (3, 4, 5)]:
    for activation in ["relu", "tanh", "gelu"]:
        for solver in ["adam", "sgd"]:
            est = fn.MLPClassifier(
                hidden, activation, solver=solver, max_iter=2, random_state=0
            ).fit(X, y)
            est.predict_proba(X)
reg = fn.MLPRegressor(hidden_layer_sizes=(4,), activation="logistic", max_iter=2)
reg.fit(X, y * 1.0).predict(X)
fn.MLPClassifier((4,), max_iter=2).fit(X.astype(np.float32), y).predict(X)
from fastnet._runtime import addresses
print(*sorted(k for k in addresses._ADDRESSES if "epoch" in k or "forward" in k))
"""


def test_one_epoch_and_forward_compilation_for_every_setting():
    # in a fresh process: 18 classifier settings (3 depths x 3 activations x 2
    # solvers), a regressor and float32 need one epoch kernel (targets cross as
    # bytes, the dtype is data) and one forward kernel: each a C kernel of one
    # signature, named without the setting
    run = subprocess.run(
        [sys.executable, "-c", SETTINGS], capture_output=True, text=True, check=True
    )
    assert run.stdout.split() == ["c_epoch", "c_forward"]


def test_c_kernels_are_called_with_the_arrays_and_scalars():
    fns = callbacks("leaky_relu", "squared_error", "sgd", np.float32)
    z = np.array([[-2.0, 0.0, 3.0]], np.float32)
    b = np.array([0.0, -1.0, 1.0], np.float32)
    out = np.empty_like(z)

    @njit
    def bias_act(address, z, b, out, alpha):
        call_void(address, (z, b, out, z.shape[0], z.shape[1], alpha))

    bias_act(fns[0], z, b, out, 0.5)  # z += b, out = leaky_relu(z)
    np.testing.assert_array_equal(z, [[-2.0, -1.0, 4.0]])
    np.testing.assert_array_equal(out, [[-1.0, -0.5, 4.0]])

    zz = np.array([[1.0, 2.0], [0.0, 1.0]], np.float32)
    bias = np.array([0.5, -1.0], np.float32)
    t = np.array([[0.5, 4.0], [0.0, 1.0]], np.float32)
    grad = np.empty_like(zz)
    db = np.full(2, np.nan, np.float32)

    @njit
    def loss(address, z, b, t, grad, db, factor):
        return call_f64(address, (z, b, t, grad, db, 2, 2, factor))

    # z += b, then squared error, mean over all elements:
    # ((1.5 - 0.5)² + (1 - 4)² + (0.5 - 0)² + (0 - 1)²) / 4 = 11.25 / 4; gradient
    # (z - t) / 2 per sample row mean, times 2 (the factor); db its column sums
    value = loss(fns[2], zz, bias, t, grad, db, 2.0)
    assert value == pytest.approx(11.25 / 4)
    np.testing.assert_array_equal(zz, [[1.5, 1.0], [0.5, 0.0]])
    expected = 2.0 * (zz - t) / 2
    np.testing.assert_allclose(grad, expected)
    np.testing.assert_allclose(db, expected.sum(0))

    @njit
    def sum_sq(address, p):
        return call_f64(address, (p, p.shape[0]))

    p = np.arange(11, dtype=np.float32)
    assert sum_sq(fns[4], p) == float((p.astype(np.float64) ** 2).sum())


def test_the_kernels_refuse_other_dtypes():
    with pytest.raises(TypeError, match="float32 or float64"):
        callbacks("relu", "squared_error", "sgd", np.float16)
    with pytest.raises(TypeError, match="float32 or float64"):
        kernels.mlp_dtype_args(np.int64)


def test_block_offsets_lay_out_each_layer_then_each_hidden_layer():
    dims = np.array([5, 4, 3, 2])
    assert kernels.mlp_block_offsets(dims, 10, False).tolist() == [0, 40, 70, 90]
    assert kernels.mlp_block_offsets(dims, 10, True).tolist() == [
        0, 40, 70, 90, 130, 160
    ]  # fmt: skip


def test_view_reads_and_writes_the_memory_at_an_address():
    a = np.zeros(6)

    @njit
    def poke(address, like):
        v = view(address, (2, 3), like)
        v[1, 2] = 7.0
        return v.shape

    assert poke(a.ctypes.data, a) == (2, 3)
    assert a[5] == 7.0


def test_layer_tables_refuse_arrays_the_kernels_cannot_take():
    W = np.zeros((3, 2))
    with pytest.raises(ValueError, match="C-contiguous"):
        layer_table([[W.T.copy().T, np.zeros(2)]], np.float64)  # Fortran order
    with pytest.raises(ValueError, match="float32"):
        layer_table([[W, np.zeros(2)]], np.float32)
    frozen = np.zeros((3, 2))
    frozen.flags.writeable = False
    layer_table([[frozen, np.zeros(2)]], np.float64)  # inference only reads
    with pytest.raises(ValueError, match="writeable"):
        layer_table([[frozen, np.zeros(2), W, np.zeros(2)]], np.float64)


def test_network_dims_refuse_layers_that_do_not_chain():
    a, b = fn.Linear(4, 3, dtype=np.float64), fn.Linear(5, 2, dtype=np.float64)
    with pytest.raises(ValueError, match="layer 1 takes 5 inputs"):
        network_dims([a, b], 4)
    with pytest.raises(ValueError, match="layer 0 takes 4 inputs"):
        network_dims([a], 6)
    assert network_dims([a, fn.Linear(3, 2)], 4).tolist() == [4, 3, 2]


def test_replaced_weights_of_the_wrong_shape_are_an_error_not_a_read_out_of_bounds():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((50, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = fn.MLPClassifier((3,), max_iter=2, random_state=0).fit(X, X[:, 0] > 0)
    est.coefs_[1] = np.zeros((7, 1))  # a hidden layer of 3 feeds it
    with pytest.raises(ValueError, match="takes 7 inputs"):
        est.predict(X)
