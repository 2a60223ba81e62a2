"""engine.optim: SGD and Adam update rules, parameter groups, zero_grad and state_dict."""

import numpy as np
import pytest

import engine
from engine import nn
from engine.optim import SGD, Adam, AdamW

SHAPES = [(3, 2), (2,)]
STEPS = 5


def as_np(t: engine.Tensor) -> np.ndarray:
    return np.array(t.detach().numpy(), dtype=np.float64)


def gradient_sequence(seed: int = 0) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [[rng.normal(size=s) for s in SHAPES] for _ in range(STEPS)]


def start_values(seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(size=s) for s in SHAPES]


def run_engine(make_optimizer, dtype=engine.float64) -> list[np.ndarray]:
    params = [nn.Parameter(engine.tensor(v, dtype=dtype)) for v in start_values()]
    optimizer = make_optimizer(params)
    for grads in gradient_sequence():
        for p, g in zip(params, grads, strict=True):
            p.grad = engine.tensor(g, dtype=dtype)
        optimizer.step()
    return [as_np(p) for p in params]


def reference_sgd(lr, momentum=0, dampening=0, weight_decay=0, nesterov=False, maximize=False):
    """The algorithm box of torch.optim.SGD's documentation, in float64 NumPy."""
    params = start_values()
    bufs: list[np.ndarray | None] = [None] * len(params)
    for grads in gradient_sequence():
        for i, (theta, g) in enumerate(zip(params, grads, strict=True)):
            g = -g if maximize else g
            if weight_decay:
                g = g + weight_decay * theta
            if momentum:
                bufs[i] = g if bufs[i] is None else momentum * bufs[i] + (1 - dampening) * g
                g = g + momentum * bufs[i] if nesterov else bufs[i]
            params[i] = theta - lr * g
    return params


def reference_adam(
    lr=1e-3,
    betas=(0.9, 0.999),
    eps=1e-8,
    weight_decay=0,
    amsgrad=False,
    maximize=False,
    decoupled=False,
):
    """The algorithm box of torch.optim.Adam / AdamW's documentation, in float64 NumPy."""
    b1, b2 = betas
    params = start_values()
    m = [np.zeros(s) for s in SHAPES]
    v = [np.zeros(s) for s in SHAPES]
    vmax = [np.zeros(s) for s in SHAPES]
    for t, grads in enumerate(gradient_sequence(), start=1):
        for i, (theta, g) in enumerate(zip(params, grads, strict=True)):
            g = -g if maximize else g
            if weight_decay and decoupled:
                theta = theta * (1 - lr * weight_decay)
            elif weight_decay:
                g = g + weight_decay * theta
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            m_hat = m[i] / (1 - b1**t)
            vmax[i] = np.maximum(vmax[i], v[i])
            v_hat = (vmax[i] if amsgrad else v[i]) / (1 - b2**t)
            params[i] = theta - lr * m_hat / (np.sqrt(v_hat) + eps)
    return params


SGD_CONFIGS = [
    {"lr": 0.1},
    {"lr": 0.05, "momentum": 0.9},
    {"lr": 0.05, "momentum": 0.9, "dampening": 0.5},
    {"lr": 0.05, "momentum": 0.9, "nesterov": True},
    {"lr": 0.1, "weight_decay": 0.1},
    {"lr": 0.05, "momentum": 0.8, "weight_decay": 0.01, "nesterov": True},
    {"lr": 0.1, "momentum": 0.5, "maximize": True},
]
ADAM_CONFIGS = [
    {},
    {"lr": 0.01, "betas": (0.8, 0.99)},
    {"lr": 0.01, "weight_decay": 0.1},
    {"lr": 0.01, "amsgrad": True},
    {"lr": 0.01, "eps": 1e-3, "maximize": True},
]


@pytest.mark.parametrize("config", SGD_CONFIGS, ids=str)
def test_sgd_follows_the_documented_update(config):
    got = run_engine(lambda params: SGD(params, **config))
    for a, b in zip(got, reference_sgd(**config), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("config", ADAM_CONFIGS, ids=str)
def test_adam_follows_the_documented_update(config):
    got = run_engine(lambda params: Adam(params, **config))
    for a, b in zip(got, reference_adam(**config), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_adamw_decouples_weight_decay():
    got = run_engine(lambda params: AdamW(params, lr=0.01, weight_decay=0.1))
    want = reference_adam(lr=0.01, weight_decay=0.1, decoupled=True)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    coupled = reference_adam(lr=0.01, weight_decay=0.1)
    assert not np.allclose(got[0], coupled[0], rtol=1e-9, atol=0)


def test_step_updates_in_place_and_keeps_leaf_parameters():
    model = nn.Linear(3, 2)
    params = list(model.parameters())
    storage = [p.detach().numpy() for p in params]
    optimizer = SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(engine.ones(4, 3)).sum().backward()
    optimizer.step()
    for p, before, arr in zip(model.parameters(), params, storage, strict=True):
        assert p is before and p.is_leaf and p.requires_grad and p.grad_fn is None
        assert np.shares_memory(p.detach().numpy(), arr)
    assert not optimizer.state[params[0]]["momentum_buffer"].requires_grad


def test_step_records_no_graph_and_bumps_the_version_like_torch():
    p = nn.Parameter(engine.tensor([1.0, 2.0]))
    optimizer = SGD([p], lr=0.1)
    loss = (p * p).sum()  # saves p for backward
    p.grad = engine.tensor([1.0, 1.0])
    optimizer.step()
    assert p.grad_fn is None
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_parameters_without_gradients_are_left_alone():
    a, b = nn.Parameter(engine.ones(2)), nn.Parameter(engine.ones(2))
    optimizer = Adam([a, b], lr=0.1)
    a.grad = engine.tensor([1.0, -1.0])
    optimizer.step()
    assert as_np(b).tolist() == [1.0, 1.0] and b not in optimizer.state
    np.testing.assert_allclose(as_np(a), [0.9, 1.1], rtol=1e-6)


def test_parameter_groups_take_their_own_hyperparameters_and_defaults():
    a, b = nn.Parameter(engine.ones(1)), nn.Parameter(engine.ones(1))
    optimizer = SGD([{"params": [a]}, {"params": b, "lr": 0.5, "momentum": 0.9}], lr=0.1)
    assert [g["lr"] for g in optimizer.param_groups] == [0.1, 0.5]
    assert [g["momentum"] for g in optimizer.param_groups] == [0, 0.9]
    a.grad, b.grad = engine.ones(1), engine.ones(1)
    optimizer.step()
    assert as_np(a).item() == pytest.approx(0.9) and as_np(b).item() == pytest.approx(0.5)
    c = nn.Parameter(engine.ones(1))
    optimizer.add_param_group({"params": [c], "lr": 0.25})
    c.grad = engine.ones(1)
    optimizer.step()
    assert as_np(c).item() == pytest.approx(0.75)
    with pytest.raises(ValueError, match="more than one parameter group"):
        optimizer.add_param_group({"params": [a]})


def test_invalid_arguments_raise_like_torch():
    p = nn.Parameter(engine.ones(1))
    with pytest.raises(ValueError, match="empty parameter list"):
        SGD([], lr=0.1)
    with pytest.raises(ValueError, match="Invalid learning rate"):
        SGD([p], lr=-1.0)
    with pytest.raises(ValueError, match="Nesterov momentum requires"):
        SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="Invalid beta parameter at index 1"):
        Adam([p], betas=(0.9, 1.0))
    with pytest.raises(TypeError, match="iterable of Tensors"):
        SGD(p, lr=0.1)
    with pytest.raises(ValueError, match="non-leaf"):
        SGD([p * 2], lr=0.1)


def test_zero_grad_sets_none_or_zeros():
    p = nn.Parameter(engine.ones(2))
    optimizer = SGD([p], lr=0.1)
    (p * 3).sum().backward()
    grad = p.grad
    optimizer.zero_grad(set_to_none=False)
    assert p.grad is grad and as_np(grad).tolist() == [0.0, 0.0]
    optimizer.zero_grad()
    assert p.grad is None


def test_closure_is_evaluated_with_grad_enabled():
    p = nn.Parameter(engine.tensor([2.0]))
    optimizer = SGD([p], lr=0.25)

    def closure():
        optimizer.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    with engine.no_grad():
        loss = optimizer.step(closure)
    assert loss.item() == 4.0 and as_np(p).item() == pytest.approx(1.0)


@pytest.mark.parametrize(
    "make",
    [lambda ps: SGD(ps, lr=0.05, momentum=0.9, nesterov=True), lambda ps: Adam(ps, lr=0.01)],
    ids=["sgd", "adam"],
)
def test_state_dict_round_trip_continues_the_same_trajectory(make):
    grads = gradient_sequence(3)
    first = [nn.Parameter(engine.tensor(v, dtype=engine.float32)) for v in start_values()]
    optimizer = make(first)
    for step_grads in grads[:2]:
        for p, g in zip(first, step_grads, strict=True):
            p.grad = engine.tensor(g, dtype=engine.float32)
        optimizer.step()
    saved = optimizer.state_dict()
    assert sorted(saved) == ["param_groups", "state"]
    assert saved["param_groups"][0]["params"] == [0, 1] and sorted(saved["state"]) == [0, 1]
    second = [nn.Parameter(engine.tensor(as_np(p), dtype=engine.float32)) for p in first]
    restored = make(second)
    restored.param_groups[0]["lr"] = 123.0  # overwritten by the load
    restored.load_state_dict(saved)
    assert restored.param_groups[0]["lr"] == optimizer.param_groups[0]["lr"]
    for step_grads in grads[2:]:
        for p, q, g in zip(first, second, step_grads, strict=True):
            p.grad = engine.tensor(g, dtype=engine.float32)
            q.grad = engine.tensor(g, dtype=engine.float32)
        optimizer.step()
        restored.step()
    for p, q in zip(first, second, strict=True):
        np.testing.assert_array_equal(as_np(p), as_np(q))
    # The restored state is a copy: stepping one optimizer leaves the other's buffers alone.
    key = next(iter(restored.state[second[0]]))
    assert restored.state[second[0]][key] is not optimizer.state[first[0]][key]


def test_load_state_dict_rejects_mismatched_groups():
    a, b = nn.Parameter(engine.ones(1)), nn.Parameter(engine.ones(1))
    saved = SGD([a, b], lr=0.1).state_dict()
    with pytest.raises(ValueError, match="doesn't match the size"):
        SGD([a], lr=0.1).load_state_dict(saved)
    with pytest.raises(ValueError, match="different number of parameter groups"):
        SGD([{"params": [a]}, {"params": [b]}], lr=0.1).load_state_dict(saved)


# ---------------------------------------------------------------------------- PyTorch parity
def _torch_pair(torch, ours_cls, theirs_cls, config, float32: bool = True):
    values = start_values()
    dtype_np = np.float32 if float32 else np.float64
    ours = [nn.Parameter(engine.tensor(v.astype(dtype_np))) for v in values]
    theirs = [torch.nn.Parameter(torch.tensor(v.astype(dtype_np))) for v in values]
    return ours, ours_cls(ours, **config), theirs, theirs_cls(theirs, **config)


@pytest.mark.parametrize(
    ("name", "config"),
    [("SGD", c) for c in SGD_CONFIGS] + [("Adam", c) for c in ADAM_CONFIGS],
    ids=str,
)
def test_update_values_state_and_repr_match_torch(name, config):
    torch = pytest.importorskip("torch")
    ours_cls = {"SGD": SGD, "Adam": Adam}[name]
    theirs_cls = getattr(torch.optim, name)
    ours, opt_ours, theirs, opt_theirs = _torch_pair(torch, ours_cls, theirs_cls, config)
    for grads in gradient_sequence():
        for p, q, g in zip(ours, theirs, grads, strict=True):
            p.grad = engine.tensor(g.astype(np.float32))
            q.grad = torch.tensor(g.astype(np.float32))
        opt_ours.step()
        opt_theirs.step()
        for p, q in zip(ours, theirs, strict=True):
            np.testing.assert_allclose(as_np(p), q.detach().numpy(), rtol=2e-6, atol=1e-7)
    s_ours, s_theirs = opt_ours.state_dict(), opt_theirs.state_dict()
    assert sorted(s_ours["state"]) == sorted(s_theirs["state"])
    for index, state in s_theirs["state"].items():
        assert list(s_ours["state"][index]) == list(state)
        for key, value in state.items():
            np.testing.assert_allclose(
                as_np(s_ours["state"][index][key]), value.numpy(), rtol=2e-5, atol=1e-7
            )
    group_ours, group_theirs = s_ours["param_groups"][0], s_theirs["param_groups"][0]
    assert set(group_ours) <= set(group_theirs)
    assert all(group_ours[k] == group_theirs[k] for k in group_ours)
    # PyTorch also prints device flags (foreach, fused, ...); every line we print is theirs.
    lines_ours = repr(opt_ours).splitlines()
    assert lines_ours[:2] == repr(opt_theirs).splitlines()[:2]
    assert set(lines_ours) <= set(repr(opt_theirs).splitlines())
