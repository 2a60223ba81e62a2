"""Tensor semantics: dtypes and promotion, repr, flags, leaves, .data/detach, errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import engine


def test_default_dtypes_follow_torch():
    assert engine.tensor(3.0).dtype is engine.float32
    assert engine.tensor(3).dtype is engine.int64
    assert engine.tensor(True).dtype is engine.bool
    assert engine.tensor([1, 2.5]).dtype is engine.float32
    assert engine.tensor(np.array([1.0])).dtype is engine.float64
    assert engine.tensor(3.0, dtype=engine.float64).dtype is engine.double
    assert engine.arange(3).dtype is engine.long and engine.arange(0, 1, 0.5).dtype is engine.float


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (engine.tensor([1, 2]), 1.5, engine.float32),
        (engine.tensor([1.0]), engine.tensor(1.0, dtype=engine.float64), engine.float32),
        (engine.tensor(1.0), engine.tensor(1.0, dtype=engine.float64), engine.float64),
        (engine.tensor([1, 2]), engine.tensor(1.5), engine.float32),
        (engine.tensor([True]), 1, engine.int64),
        (engine.tensor([1, 2]), engine.tensor([1.0], dtype=engine.float64), engine.float64),
    ],
)
def test_type_promotion(a, b, expected):
    assert (a + b).dtype is expected
    assert (a * b).dtype is expected


def test_integer_division_is_float():
    assert (engine.tensor([1, 2]) / engine.tensor([2, 4])).tolist() == [0.5, 0.5]
    assert (engine.tensor([1, 2]) / 2).dtype is engine.float32


def test_only_floating_tensors_require_grad():
    with pytest.raises(RuntimeError, match="floating point"):
        engine.tensor([1, 2], requires_grad=True)


@pytest.mark.parametrize(
    ("make", "text"),
    [
        (lambda: engine.tensor(8.0), "tensor(8.)"),
        (lambda: engine.tensor([3.0, 4.0]), "tensor([3., 4.])"),
        (lambda: engine.tensor(6.0, requires_grad=True), "tensor(6., requires_grad=True)"),
        (lambda: engine.tensor(3.0, requires_grad=True) * 3, "tensor(9., grad_fn=<MulBackward0>)"),
        (lambda: engine.tensor([1.5, 2]), "tensor([1.5000, 2.0000])"),
        (lambda: engine.tensor([1, 2]), "tensor([1, 2])"),
        (lambda: engine.tensor(3.0, dtype=engine.float64), "tensor(3., dtype=engine.float64)"),
        (lambda: engine.tensor([1e-5, 1]), "tensor([1.0000e-05, 1.0000e+00])"),
        (lambda: engine.tensor(True), "tensor(True)"),
        (lambda: engine.tensor([]), "tensor([])"),
        (lambda: engine.zeros(0, 3), "tensor([], size=(0, 3))"),
        (lambda: engine.tensor([[1.0, -2.0], [3.0, 4.5]]),
         "tensor([[ 1.0000, -2.0000],\n        [ 3.0000,  4.5000]])"),
        (lambda: engine.tensor([float("nan"), float("inf"), 1.0]), "tensor([nan, inf, 1.])"),
    ],
)
def test_repr_matches_torch(make, text):
    assert repr(make()) == text


def test_repr_of_large_tensor_matches_torch():
    torch = pytest.importorskip("torch")
    data = np.linspace(-3, 3, 2000).reshape(40, 50)
    assert repr(engine.tensor(data, dtype=engine.float32)) == repr(
        torch.tensor(data, dtype=torch.float32)
    )
    data = np.random.default_rng(0).standard_normal((5, 17)) * 1e3
    assert repr(engine.tensor(data)) == repr(torch.tensor(data)).replace("torch.", "engine.")


def test_leaves_and_grad_fn():
    x = engine.tensor(5.0, requires_grad=True)
    y = x * 2
    assert x.is_leaf and not y.is_leaf and x.grad_fn is None
    assert y.grad_fn.name() == "MulBackward0"
    (acc, nr), (none, _) = y.grad_fn.next_functions
    assert acc.name() == "torch::autograd::AccumulateGrad" and acc.variable is x and none is None
    assert engine.tensor(1.0).is_leaf and (engine.tensor(1.0) * 2).is_leaf


def test_no_graph_without_requires_grad_or_under_no_grad():
    x = engine.tensor(1.0, requires_grad=True)
    with engine.no_grad():
        y = x * 2
    assert y.grad_fn is None and not y.requires_grad
    assert (engine.tensor(1.0) * engine.tensor(2.0)).grad_fn is None

    @engine.no_grad()
    def f(t):
        return t * 2

    assert f(x).grad_fn is None and engine.is_grad_enabled()
    with engine.no_grad(), engine.enable_grad():
        assert (x * 2).grad_fn is not None
    engine.set_grad_enabled(False)
    try:
        assert not engine.is_grad_enabled()
    finally:
        engine.set_grad_enabled(True)
    with engine.set_grad_enabled(False):
        assert (x * 2).grad_fn is None
    assert engine.is_grad_enabled()


def test_reading_grad_of_non_leaf_warns_like_torch():
    x = engine.tensor(1.0, requires_grad=True)
    y = x * 2
    with pytest.warns(UserWarning, match="is not a leaf Tensor is being accessed"):
        assert y.grad is None
    y = x * 2
    y.retain_grad()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert y.grad is None


def test_detach_shares_storage_and_version_but_data_does_not_track_versions():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    y = x * 1
    d = y.detach()
    d.zero_()
    assert y.tolist() == [0.0, 0.0] and y._version == 1 and not d.requires_grad
    z = x.data
    z.add_(1)
    assert x.tolist() == [2.0, 3.0] and x._version == 0


def test_requires_grad_flag_rules():
    y = engine.tensor(1.0, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="only change requires_grad flags of leaf"):
        y.requires_grad = False
    t = engine.tensor(1.0).requires_grad_()
    assert t.requires_grad and t.is_leaf


def test_numpy_item_tolist_size():
    x = engine.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert x.numpy().shape == (2, 2) and x.size() == (2, 2) and x.size(1) == 2
    assert x.dim() == 2 and x.numel() == 4 and x[1, 0].item() == 3.0
    assert repr(x.shape) == "engine.Size([2, 2])"
    with pytest.raises(RuntimeError, match=r"Can't call numpy\(\) on Tensor that requires grad"):
        engine.tensor(1.0, requires_grad=True).numpy()
    with pytest.raises(RuntimeError, match="cannot be converted to Scalar"):
        x.item()


def test_shape_errors_are_runtime_errors_worded_as_torch():
    with pytest.raises(RuntimeError, match=r"The size of tensor a \(3\) must match the size of "
                                           r"tensor b \(4\) at non-singleton dimension 1"):
        engine.randn(2, 3) + engine.randn(2, 4)
    with pytest.raises(RuntimeError, match=r"mat1 and mat2 shapes cannot be multiplied "
                                           r"\(2x3 and 2x3\)"):
        engine.randn(2, 3) @ engine.randn(2, 3)
    with pytest.raises(RuntimeError, match="view size is not compatible"):
        engine.randn(3, 3).t().view(9)
    with pytest.raises(RuntimeError, match=r"shape '\[-1, 3\]' is invalid for input of size 2"):
        engine.randn(2).view(-1, 3)


def test_indexing_views_and_gathers():
    x = engine.arange(12.0).reshape(3, 4)
    assert x[1].tolist() == [4.0, 5.0, 6.0, 7.0]
    assert x[:, 1].tolist() == [1.0, 5.0, 9.0]
    assert x[1:, ::2].tolist() == [[4.0, 6.0], [8.0, 10.0]]
    assert x[..., -1].tolist() == [3.0, 7.0, 11.0]
    assert x[None, 0].shape == (1, 4)
    assert x[[0, 2]].shape == (2, 4)
    assert x[x > 9].tolist() == [10.0, 11.0]
    assert x[engine.tensor([2, 0]), engine.tensor([1, 1])].tolist() == [9.0, 1.0]
    with pytest.raises(IndexError, match="index 3 is out of bounds for dimension 0 with size 3"):
        x[3]


def test_indexing_gradient_scatter_adds_repeated_indices():
    x = engine.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[[0, 0, 2]].sum().backward()
    assert x.grad.tolist() == [2.0, 0.0, 1.0]
    x.grad = None
    x[x > 1.5].sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0]


def test_kinks_follow_torch():
    x = engine.tensor([0.0, 0.0, 1.0, 2.0], requires_grad=True)
    (x.relu() + x.abs()).sum().backward()
    assert x.grad.tolist() == [0.0, 0.0, 2.0, 2.0]
    x = engine.tensor([0.0, 0.5, 1.0, 1.5], requires_grad=True)
    x.clamp(0.0, 1.0).sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 1.0, 0.0]  # the gradient passes at the bounds
    a = engine.tensor(1.0, requires_grad=True)
    b = engine.tensor(1.0, requires_grad=True)
    engine.maximum(a, b).backward()
    assert (a.grad.item(), b.grad.item()) == (0.5, 0.5)
    m = engine.tensor([1.0, 3.0, 3.0], requires_grad=True)
    m.max().backward()
    assert m.grad.tolist() == [0.0, 0.5, 0.5]
    m.grad = None
    m.max(dim=0).values.backward()
    assert m.grad.tolist() == [0.0, 1.0, 0.0]


def test_prod_gradient_with_zeros():
    x = engine.tensor([2.0, 0.0, 3.0], requires_grad=True)
    x.prod().backward()
    assert x.grad.tolist() == [0.0, 6.0, 0.0]


def test_module_functions_mirror_methods():
    x = engine.tensor([[1.0, -2.0], [3.0, 4.0]])
    assert engine.exp(x).allclose(x.exp())
    assert engine.sum(x, dim=0).tolist() == [4.0, 2.0]
    assert engine.where(x > 0, x, engine.zeros(2, 2)).tolist() == [[1.0, 0.0], [3.0, 4.0]]
    assert engine.stack([x, x]).shape == (2, 2, 2) and engine.cat([x, x], 1).shape == (2, 4)
    assert engine.relu(x).tolist() == [[1.0, 0.0], [3.0, 4.0]]
    assert x.T.tolist() == [[1.0, 3.0], [-2.0, 4.0]]
    assert x.permute(1, 0).tolist() == x.transpose(0, 1).tolist()


def test_no_numpy_warnings_on_domain_edges():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert engine.tensor(0.0).log().item() == float("-inf")
        assert np.isnan(engine.tensor(-1.0).sqrt().item())
        assert engine.tensor(1.0) / 0 == float("inf")
