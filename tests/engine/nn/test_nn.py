"""engine.nn: Parameter, Module bookkeeping, layers, losses, init and the functional forms."""

import copy
import math
from collections import OrderedDict

import numpy as np
import pytest

import engine
from engine import nn
from engine.nn import functional as F


def as_np(t: engine.Tensor) -> np.ndarray:
    return np.array(t.detach().numpy(), dtype=np.float64)


def np_log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


class TwoLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Linear(3, 4)
        self.scale = nn.Parameter(engine.ones(1))
        self.second = nn.Sequential(nn.Tanh(), nn.Linear(4, 2))

    def forward(self, x: engine.Tensor) -> engine.Tensor:
        return self.second(self.first(x)) * self.scale


# ---------------------------------------------------------------------------- Parameter
def test_parameter_is_a_leaf_tensor_that_requires_grad_and_shares_storage():
    data = engine.tensor([1.0, 2.0])
    p = nn.Parameter(data)
    assert isinstance(p, engine.Tensor) and isinstance(p, nn.Parameter)
    assert p.is_leaf and p.requires_grad and p.grad_fn is None
    with engine.no_grad():
        data.mul_(3.0)
    assert p.tolist() == [3.0, 6.0]


def test_parameter_repr_matches_torch():
    p = nn.Parameter(engine.tensor([1.0, 2.0]))
    assert repr(p) == "Parameter containing:\ntensor([1., 2.], requires_grad=True)"
    frozen = nn.Parameter(engine.tensor([1.0, 2.0]), requires_grad=False)
    assert repr(frozen) == "Parameter containing:\ntensor([1., 2.])"


def test_ops_on_a_parameter_give_plain_tensors_with_history():
    p = nn.Parameter(engine.tensor([1.0, 2.0]))
    out = p * 2
    assert type(out) is engine.Tensor and not isinstance(out, nn.Parameter)
    assert out.grad_fn is not None


def test_parameter_from_a_non_leaf_becomes_a_fresh_leaf():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    p = nn.Parameter(x * 2)
    assert p.is_leaf and p.grad_fn is None
    (p * p).sum().backward()
    assert p.grad.tolist() == [4.0, 8.0]
    assert x.grad is None


def test_parameter_deepcopy_keeps_type_and_copies_storage():
    p = nn.Parameter(engine.tensor([1.0, 2.0]))
    q = copy.deepcopy(p)
    assert isinstance(q, nn.Parameter) and q.requires_grad and q is not p
    with engine.no_grad():
        q.mul_(0.0)
    assert p.tolist() == [1.0, 2.0]


# ---------------------------------------------------------------------------- Module
def test_named_parameters_lists_own_parameters_before_childrens():
    model = TwoLayer()
    names = [name for name, _ in model.named_parameters()]
    assert names == ["scale", "first.weight", "first.bias", "second.1.weight", "second.1.bias"]
    assert [p for p in model.parameters()] == [p for _, p in model.named_parameters()]


def test_children_and_modules_walk_the_tree_in_order():
    model = TwoLayer()
    assert [type(m).__name__ for m in model.children()] == ["Linear", "Sequential"]
    assert [name for name, _ in model.named_modules()] == [
        "",
        "first",
        "second",
        "second.0",
        "second.1",
    ]
    assert len(list(model.modules())) == 5


def test_shared_parameters_and_modules_are_listed_once():
    shared = nn.Linear(2, 2)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    assert len(list(model.parameters())) == 2
    assert [n for n, _ in model.named_modules()] == ["", "0", "1"]


def test_setattr_registers_and_rejects_plain_tensors_for_parameter_slots():
    layer = nn.Linear(2, 3)
    with pytest.raises(TypeError, match="cannot assign"):
        layer.weight = engine.zeros(3, 2)
    layer.weight = nn.Parameter(engine.zeros(3, 2))
    assert [n for n, _ in layer.named_parameters()] == ["weight", "bias"]
    layer.bias = None
    assert [n for n, _ in layer.named_parameters()] == ["weight"]
    layer.note = "plain attribute"
    assert layer.note == "plain attribute"
    with pytest.raises(AttributeError, match="'Linear' object has no attribute 'missing'"):
        _ = layer.missing


def test_module_without_init_call_errors_on_parameter_assignment():
    class Broken(nn.Module):
        def __init__(self) -> None:
            self.w = nn.Parameter(engine.zeros(1))

    with pytest.raises(AttributeError, match="before Module.__init__"):
        Broken()


def test_call_runs_forward_and_a_missing_forward_is_reported():
    layer = nn.Linear(2, 1)
    x = engine.tensor([[1.0, 2.0]])
    assert layer(x).tolist() == layer.forward(x).tolist()
    with pytest.raises(NotImplementedError, match="forward"):
        nn.Module()(x)


def test_zero_grad_sets_none_by_default_or_zeros_in_place():
    layer = nn.Linear(2, 2)
    layer(engine.ones(1, 2)).sum().backward()
    grad = layer.weight.grad
    layer.zero_grad(set_to_none=False)
    assert layer.weight.grad is grad and as_np(grad).tolist() == [[0.0, 0.0], [0.0, 0.0]]
    layer.zero_grad()
    assert layer.weight.grad is None and layer.bias.grad is None


def test_train_and_eval_reach_every_descendant():
    model = TwoLayer()
    assert model.eval() is model
    assert all(not m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())


def test_state_dict_round_trip_and_detached_values():
    model = TwoLayer()
    state = model.state_dict()
    assert list(state) == [
        "scale",
        "first.weight",
        "first.bias",
        "second.1.weight",
        "second.1.bias",
    ]
    assert all(not v.requires_grad for v in state.values())
    other = TwoLayer()
    result = other.load_state_dict(state)
    assert result.missing_keys == [] and result.unexpected_keys == []
    for (name, a), (_, b) in zip(model.named_parameters(), other.named_parameters(), strict=True):
        np.testing.assert_array_equal(as_np(a), as_np(b), err_msg=name)
        assert b.is_leaf and b.requires_grad


def test_load_state_dict_reports_missing_unexpected_and_size_mismatch():
    layer = nn.Linear(2, 3)
    with pytest.raises(RuntimeError, match=r'Missing key\(s\) in state_dict: "bias"'):
        layer.load_state_dict({"weight": engine.zeros(3, 2)})
    with pytest.raises(RuntimeError, match=r'Unexpected key\(s\) in state_dict: "extra"'):
        layer.load_state_dict({**layer.state_dict(), "extra": engine.zeros(1)})
    with pytest.raises(RuntimeError, match="size mismatch for weight"):
        layer.load_state_dict({"weight": engine.zeros(2, 2), "bias": engine.zeros(3)})
    result = layer.load_state_dict({"weight": engine.ones(3, 2)}, strict=False)
    assert result.missing_keys == ["bias"]
    assert as_np(layer.weight).tolist() == [[1.0, 1.0]] * 3


def test_buffers_go_into_state_dict_unless_non_persistent():
    loss = nn.CrossEntropyLoss(weight=engine.tensor([1.0, 2.0]))
    assert list(loss.state_dict()) == ["weight"]
    module = nn.Module()
    module.register_buffer("running", engine.zeros(2))
    module.register_buffer("scratch", engine.zeros(2), persistent=False)
    assert list(module.state_dict()) == ["running"]
    assert [n for n, _ in module.named_buffers()] == ["running", "scratch"]


def test_repr_prints_the_module_tree_like_torch():
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3, bias=False), nn.Tanh())
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Linear(in_features=4, out_features=16, bias=True)\n"
        "  (1): ReLU()\n"
        "  (2): Linear(in_features=16, out_features=3, bias=False)\n"
        "  (3): Tanh()\n"
        ")"
    )
    assert repr(TwoLayer()) == (
        "TwoLayer(\n"
        "  (first): Linear(in_features=3, out_features=4, bias=True)\n"
        "  (second): Sequential(\n"
        "    (0): Tanh()\n"
        "    (1): Linear(in_features=4, out_features=2, bias=True)\n"
        "  )\n"
        ")"
    )
    assert repr(nn.MSELoss()) == "MSELoss()" and repr(nn.Sigmoid()) == "Sigmoid()"


def test_apply_visits_children_before_parent():
    model = TwoLayer()
    seen: list[str] = []
    model.apply(lambda m: seen.append(type(m).__name__))
    assert seen == ["Linear", "Tanh", "Linear", "Sequential", "TwoLayer"]


def test_deepcopy_of_a_model_is_independent():
    model = TwoLayer()
    clone = copy.deepcopy(model)
    with engine.no_grad():
        for p in clone.parameters():
            p.zero_()
    assert any(as_np(p).any() for p in model.parameters())
    assert all(isinstance(p, nn.Parameter) for p in clone.parameters())


def test_double_and_float_cast_parameters_in_place_of_the_same_objects():
    model = TwoLayer()
    params = list(model.parameters())
    assert model.double() is model
    assert all(p.dtype == engine.float64 for p in model.parameters())
    assert all(a is b for a, b in zip(params, model.parameters(), strict=True))
    x = engine.randn(2, 3, dtype=engine.float64, requires_grad=True)
    assert engine.autograd.gradcheck(lambda t: model(t), (x,))
    model.to(engine.float32)
    assert all(p.dtype == engine.float32 for p in model.parameters())
    with pytest.raises(RuntimeError, match="CPU"):
        model.to("cuda")


def test_requires_grad_freezes_every_parameter():
    model = TwoLayer().requires_grad_(False)
    assert all(not p.requires_grad for p in model.parameters())


# ---------------------------------------------------------------------------- no_grad writes
def test_in_place_updates_under_no_grad_keep_the_same_leaf_parameters():
    model = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1))
    before = list(model.parameters())
    model(engine.ones(4, 3)).sum().backward()
    expected = [as_np(p) - 0.1 * as_np(p.grad) for p in before]
    with engine.no_grad():
        for p in model.parameters():
            p -= 0.1 * p.grad
    after = list(model.parameters())
    assert all(a is b for a, b in zip(before, after, strict=True))
    for p, want in zip(after, expected, strict=True):
        assert isinstance(p, nn.Parameter) and p.is_leaf and p.requires_grad
        assert p.grad_fn is None
        np.testing.assert_allclose(as_np(p), want, rtol=1e-6, atol=1e-7)
    with engine.no_grad():
        model[0].weight[...] = 0.5
        model[0].bias[0] = -1.0
    assert model[0].weight is before[0] and model[0].weight.is_leaf
    assert as_np(model[0].weight).tolist() == [[0.5] * 3] * 2
    assert as_np(model[0].bias)[0] == -1.0
    # The parameters still train: a new backward reaches them as leaves.
    model.zero_grad()
    model(engine.ones(4, 3)).sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_in_place_update_of_a_parameter_outside_no_grad_is_an_error():
    p = nn.Parameter(engine.ones(2))
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        p -= 1.0


# ---------------------------------------------------------------------------- Linear, init
def test_linear_computes_x_w_transpose_plus_b():
    layer = nn.Linear(3, 2)
    x = engine.randn(5, 3)
    want = as_np(x) @ as_np(layer.weight).T + as_np(layer.bias)
    np.testing.assert_allclose(as_np(layer(x)), want, rtol=1e-5, atol=1e-6)
    assert tuple(layer(engine.randn(3)).shape) == (2,)
    assert layer.weight.shape == (2, 3) and layer.bias.shape == (2,)


def test_linear_default_init_follows_torch_bounds():
    engine.manual_seed(0)
    layer = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    w, b = as_np(layer.weight), as_np(layer.bias)
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    # U(-b, b) has standard deviation b / sqrt(3); 120,000 draws pin it to well under 1%.
    assert abs(w.std() - bound / math.sqrt(3)) < 0.01 * bound
    assert abs(w.mean()) < 0.01 * bound
    assert np.abs(b).max() > 0.9 * bound


def test_linear_init_is_deterministic_under_manual_seed():
    engine.manual_seed(7)
    a = nn.Linear(3, 3)
    engine.manual_seed(7)
    b = nn.Linear(3, 3)
    np.testing.assert_array_equal(as_np(a.weight), as_np(b.weight))
    np.testing.assert_array_equal(as_np(a.bias), as_np(b.bias))


def test_init_functions_fill_in_place():
    t = nn.Parameter(engine.zeros(50, 40))
    assert nn.init.constant_(t, 0.5) is t and as_np(t).min() == as_np(t).max() == 0.5
    nn.init.zeros_(t)
    assert not as_np(t).any()
    nn.init.ones_(t)
    assert as_np(t).min() == 1.0
    nn.init.uniform_(t, -2.0, 3.0)
    assert -2.0 <= as_np(t).min() and as_np(t).max() <= 3.0
    nn.init.normal_(t, 1.0, 0.01)
    assert abs(as_np(t).mean() - 1.0) < 0.01
    nn.init.xavier_uniform_(t)
    assert np.abs(as_np(t)).max() <= math.sqrt(6 / 90)
    nn.init.kaiming_normal_(t, nonlinearity="relu")
    assert abs(as_np(t).std() - math.sqrt(2 / 40)) < 0.02
    assert t.is_leaf and t.requires_grad
    assert nn.init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert nn.init.calculate_gain("leaky_relu", math.sqrt(5)) == pytest.approx(math.sqrt(1 / 3))
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        nn.init.kaiming_uniform_(engine.zeros(3))


# ---------------------------------------------------------------------------- Sequential
def test_sequential_indexing_slicing_and_append():
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    assert len(model) == 2 and isinstance(model[-1], nn.ReLU)
    model.append(nn.Linear(3, 1))
    assert [type(m).__name__ for m in model] == ["Linear", "ReLU", "Linear"]
    head = model[:2]
    assert isinstance(head, nn.Sequential) and len(head) == 2 and head[0] is model[0]
    named = nn.Sequential(OrderedDict([("fc", nn.Linear(2, 2)), ("act", nn.Tanh())]))
    assert [n for n, _ in named.named_parameters()] == ["fc.weight", "fc.bias"]
    with pytest.raises(IndexError):
        model[3]
    del model[1]
    assert [name for name, _ in model.named_children()] == ["0", "1"]


# ---------------------------------------------------------------------------- activations
@pytest.mark.parametrize(
    ("module", "function", "reference"),
    [
        (nn.ReLU, F.relu, lambda x: np.maximum(x, 0.0)),
        (nn.Tanh, F.tanh, np.tanh),
        (nn.Sigmoid, F.sigmoid, lambda x: 1 / (1 + np.exp(-x))),
    ],
)
def test_activations_match_numpy_and_functional(module, function, reference):
    x = engine.tensor([[-2.0, -0.5, 0.0], [0.5, 1.0, 3.0]], requires_grad=True)
    out = module()(x)
    np.testing.assert_allclose(as_np(out), reference(as_np(x)), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(as_np(function(x)), as_np(out))
    assert out.grad_fn is not None


def test_softmax_and_log_softmax_are_stable_and_normalised():
    x = engine.tensor([[1000.0, -1000.0, 0.0], [1.0, 2.0, 3.0]])
    p = F.softmax(x, dim=1)
    assert np.isfinite(as_np(p)).all()
    np.testing.assert_allclose(as_np(p).sum(axis=1), [1.0, 1.0], rtol=1e-6)
    logp = F.log_softmax(x, dim=1)
    np.testing.assert_allclose(as_np(logp), np_log_softmax(as_np(x), 1), rtol=1e-6)
    np.testing.assert_allclose(
        as_np(nn.LogSoftmax(dim=0)(x)), np_log_softmax(as_np(x), 0), rtol=1e-6, atol=1e-6
    )
    with pytest.warns(UserWarning, match="Implicit dimension"):
        F.softmax(x)


# ---------------------------------------------------------------------------- losses
def test_mse_loss_reductions_and_gradient():
    x = engine.tensor([[1.0, 2.0], [3.0, 5.0]], requires_grad=True)
    y = engine.tensor([[0.0, 2.0], [1.0, 1.0]])
    loss = nn.MSELoss()(x, y)
    assert loss.item() == pytest.approx((1 + 0 + 4 + 16) / 4)
    loss.backward()
    np.testing.assert_allclose(as_np(x.grad), 2 * (as_np(x) - as_np(y)) / 4)
    assert nn.MSELoss(reduction="sum")(x, y).item() == pytest.approx(21.0)
    assert as_np(F.mse_loss(x, y, reduction="none")).tolist() == [[1.0, 0.0], [4.0, 16.0]]
    with pytest.raises(ValueError, match="not a valid value for reduction"):
        F.mse_loss(x, y, reduction="avg")
    with pytest.warns(UserWarning, match="different to the input size"):
        F.mse_loss(x, engine.zeros(2))


def test_cross_entropy_matches_the_log_softmax_reference_and_its_gradient():
    logits = engine.tensor([[2.0, 1.0, 0.1], [0.5, 2.5, -1.0], [0.0, 0.0, 3.0]], requires_grad=True)
    target = engine.tensor([0, 1, 2])
    loss = nn.CrossEntropyLoss()(logits, target)
    logp = np_log_softmax(as_np(logits), 1)
    assert loss.item() == pytest.approx(-logp[[0, 1, 2], [0, 1, 2]].mean(), rel=1e-6)
    loss.backward()
    onehot = np.eye(3)
    np.testing.assert_allclose(as_np(logits.grad), (np.exp(logp) - onehot) / 3, atol=1e-7)
    assert target.dtype == engine.int64


def test_cross_entropy_stays_finite_for_logits_of_plus_minus_1000():
    logits = engine.tensor([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 999.0]], requires_grad=True)
    target = engine.tensor([1, 2])
    loss = F.cross_entropy(logits, target)
    assert np.isfinite(loss.item())
    assert loss.item() == pytest.approx((2000.0 + (1.0 + math.log1p(math.exp(-1.0)))) / 2)
    loss.backward()
    assert np.isfinite(as_np(logits.grad)).all()
    assert as_np(F.cross_entropy(logits, engine.tensor([0, 1]), reduction="none")).tolist() == [
        pytest.approx(0.0),
        pytest.approx(math.log1p(math.exp(-1.0)), rel=1e-5),
    ]


def test_cross_entropy_accepts_unbatched_input():
    logits = engine.tensor([0.2, 1.5, -0.3], requires_grad=True)
    loss = F.cross_entropy(logits, engine.tensor(1))
    assert loss.ndim == 0
    assert loss.item() == pytest.approx(-np_log_softmax(as_np(logits), 0)[1], rel=1e-6)
    loss.backward()
    assert logits.grad.shape == (3,)
    none = F.cross_entropy(logits, engine.tensor(1), reduction="none")
    assert none.ndim == 0 and none.item() == pytest.approx(loss.item())


def test_cross_entropy_weights_ignore_index_smoothing_and_probability_targets():
    x = np.array([[1.0, 2.0, 0.5], [0.3, -1.0, 2.0], [2.0, 0.0, 0.0], [0.1, 0.2, 0.3]])
    logits = engine.tensor(x, dtype=engine.float64)
    target = np.array([1, 2, -100, 0])
    logp = np_log_softmax(x, 1)
    weight = np.array([0.5, 2.0, 1.0])
    rows = [0, 1, 3]
    picked = -logp[rows, target[rows]]
    got = F.cross_entropy(logits, engine.tensor(target), weight=engine.tensor(weight))
    want = (weight[target[rows]] * picked).sum() / weight[target[rows]].sum()
    assert got.item() == pytest.approx(want, rel=1e-12)
    smooth = F.cross_entropy(logits, engine.tensor(target), label_smoothing=0.2)
    want = (0.8 * picked + 0.2 / 3 * -logp[rows].sum(1)).mean()
    assert smooth.item() == pytest.approx(want, rel=1e-12)
    probs = np.array([[0.2, 0.8, 0.0], [0.0, 0.0, 1.0], [1 / 3] * 3, [0.5, 0.5, 0.0]])
    soft = F.cross_entropy(logits, engine.tensor(probs, dtype=engine.float64))
    assert soft.item() == pytest.approx(-(probs * logp).sum(1).mean(), rel=1e-12)
    assert F.cross_entropy(logits, engine.tensor(target), reduction="sum").item() == (
        pytest.approx(picked.sum(), rel=1e-12)
    )
    with pytest.raises(IndexError, match="Target 3 is out of bounds"):
        F.cross_entropy(logits, engine.tensor([0, 1, 2, 3]))


def test_cross_entropy_over_extra_dimensions_moves_the_class_dim():
    x = np.random.default_rng(0).normal(size=(2, 3, 4))
    target = np.array([[0, 1, 2, 1], [2, 2, 0, 0]])
    got = F.cross_entropy(engine.tensor(x), engine.tensor(target), reduction="none")
    logp = np_log_softmax(x, 1)
    want = -np.take_along_axis(logp, target[:, None, :], axis=1)[:, 0, :]
    np.testing.assert_allclose(as_np(got), want, rtol=1e-5)


def test_losses_are_twice_differentiable():
    x = engine.tensor(
        [[0.3, -1.2, 2.0], [1.0, 0.5, -0.5]], dtype=engine.float64, requires_grad=True
    )
    target = engine.tensor([2, 0])
    assert engine.autograd.gradcheck(lambda t: F.cross_entropy(t, target), (x,))
    assert engine.autograd.gradgradcheck(lambda t: F.cross_entropy(t, target), (x,))
    y = engine.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 2.0]], dtype=engine.float64)
    assert engine.autograd.gradgradcheck(lambda t: F.mse_loss(t.tanh(), y), (x,))
    assert engine.autograd.gradgradcheck(lambda t: F.softmax(t, dim=1).sigmoid(), (x,))
    # The Hessian of mean cross-entropy in the logits is (diag(p) - p p^T) / N per row.
    (g,) = engine.autograd.grad(F.cross_entropy(x, target), x, create_graph=True)
    (h00,) = engine.autograd.grad(g[0, 0], x)
    p = np.exp(np_log_softmax(as_np(x), 1))[0]
    np.testing.assert_allclose(as_np(h00)[0], (np.eye(3)[0] * p[0] - p[0] * p) / 2, atol=1e-12)


# ---------------------------------------------------------------------------- PyTorch parity
def test_module_parity_with_torch_names_repr_and_outputs():
    torch = pytest.importorskip("torch")
    ours = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3), nn.Sigmoid())
    theirs = torch.nn.Sequential(
        torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3), torch.nn.Sigmoid()
    )
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    ours.load_state_dict({k: engine.tensor(v.numpy()) for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
    np.testing.assert_allclose(
        as_np(ours(engine.tensor(x))), theirs(torch.tensor(x)).detach().numpy(), rtol=1e-5
    )
    p_ours, p_theirs = (
        nn.Parameter(engine.tensor([1.5, -2.0])),
        torch.nn.Parameter(torch.tensor([1.5, -2.0])),
    )
    assert repr(p_ours) == repr(p_theirs)


def test_loss_parity_with_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    x = rng.normal(size=(6, 4)) * 5
    target = rng.integers(0, 4, size=6)
    target[2] = -100
    weight = np.array([1.0, 0.5, 2.0, 1.5])
    for kwargs in (
        {},
        {"reduction": "sum"},
        {"reduction": "none"},
        {"label_smoothing": 0.1},
        {"weight": weight, "label_smoothing": 0.3},
    ):
        ours_kw = {k: engine.tensor(v) if k == "weight" else v for k, v in kwargs.items()}
        theirs_kw = {k: torch.tensor(v) if k == "weight" else v for k, v in kwargs.items()}
        xe = engine.tensor(x, requires_grad=True)
        xt = torch.tensor(x, requires_grad=True)
        a = F.cross_entropy(xe, engine.tensor(target), **ours_kw)
        b = torch.nn.functional.cross_entropy(xt, torch.tensor(target), **theirs_kw)
        np.testing.assert_allclose(as_np(a), b.detach().numpy(), rtol=1e-12, err_msg=str(kwargs))
        a.sum().backward()
        b.sum().backward()
        np.testing.assert_allclose(as_np(xe.grad), xt.grad.numpy(), rtol=1e-10, atol=1e-14)
