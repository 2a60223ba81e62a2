"""nn layers, losses, optimizers and schedulers against torch: the same weights in, the same
outputs, node names, gradients and state out. Skipped cleanly without torch."""

from __future__ import annotations

import numpy as np
import pytest

import engine

torch = pytest.importorskip("torch")


def _copy_weights(src, dst):
    """Give the engine module `dst` the torch module `src`'s parameters and buffers."""
    state = {k: engine.tensor(v.detach().numpy().copy()) for k, v in src.state_dict().items()}
    dst.load_state_dict(state)


def _data(shape, seed=0, kind="normal"):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape).astype(np.float32) if kind == "normal" else \
        rng.integers(0, 5, shape)


LAYERS = {
    "Linear 2-D": (lambda nn: nn.Linear(4, 3), (5, 4)),
    "Linear 3-D": (lambda nn: nn.Linear(4, 3), (2, 5, 4)),
    "Linear 1-D": (lambda nn: nn.Linear(4, 3), (4,)),
    "Linear no bias": (lambda nn: nn.Linear(4, 3, bias=False), (5, 4)),
    "Conv2d": (lambda nn: nn.Conv2d(2, 3, 3, stride=2, padding=1), (2, 2, 7, 7)),
    "Conv2d groups": (lambda nn: nn.Conv2d(4, 6, (3, 2), groups=2, dilation=(1, 2)), (1, 4, 6, 7)),
    "Conv1d": (lambda nn: nn.Conv1d(2, 3, 3, padding="same"), (2, 2, 8)),
    "MaxPool2d": (lambda nn: nn.MaxPool2d(2), (2, 3, 6, 6)),
    "MaxPool2d ceil_mode": (lambda nn: nn.MaxPool2d(3, stride=2, ceil_mode=True), (2, 3, 6, 6)),
    "AvgPool2d": (lambda nn: nn.AvgPool2d(2), (2, 3, 6, 6)),
    "LayerNorm": (lambda nn: nn.LayerNorm(4), (3, 4)),
    "BatchNorm1d": (lambda nn: nn.BatchNorm1d(4), (6, 4)),
    "BatchNorm2d": (lambda nn: nn.BatchNorm2d(3), (4, 3, 2, 2)),
    "Flatten": (lambda nn: nn.Flatten(), (2, 3, 4)),
    "Unflatten": (lambda nn: nn.Unflatten(1, (2, 2)), (3, 4)),
    "Identity": (lambda nn: nn.Identity(), (3, 4)),
    "Softmax": (lambda nn: nn.Softmax(dim=1), (3, 4)),
    "LogSoftmax": (lambda nn: nn.LogSoftmax(dim=1), (3, 4)),
    "GELU": (lambda nn: nn.GELU(), (3, 4)),
    "SiLU": (lambda nn: nn.SiLU(), (3, 4)),
    "LeakyReLU": (lambda nn: nn.LeakyReLU(0.1), (3, 4)),
    "Softplus": (lambda nn: nn.Softplus(), (3, 4)),
    "Sequential": (lambda nn: nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.0),
                                            nn.Linear(8, 2)), (3, 4)),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_matches_torch(name):
    make, shape = LAYERS[name]
    t_mod = make(torch.nn)
    e_mod = make(engine.nn)
    _copy_weights(t_mod, e_mod)
    data = _data(shape)
    out = {}
    for lib, mod in ((torch, t_mod), (engine, e_mod)):
        x = lib.tensor(data, requires_grad=True)
        y = mod(x)
        w = lib.tensor(np.linspace(-1, 1, y.numel(), dtype=np.float32).reshape(tuple(y.shape)))
        (y * w).sum().backward()
        grads = {n: p.grad.numpy().copy() for n, p in mod.named_parameters()}
        buffers = {n: b.numpy().copy() for n, b in mod.named_buffers()}
        out[lib] = (y.detach().numpy().copy(), x.grad.numpy().copy(), grads, buffers,
                    y.grad_fn.name() if y.grad_fn else None, repr(mod))
    (ye, xe, ge, be, ne, re), (yt, xt, gt, bt, nt, rt) = out[engine], out[torch]
    np.testing.assert_allclose(ye, yt, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(xe, xt, rtol=1e-4, atol=1e-5)
    assert ge.keys() == gt.keys()
    for k in ge:
        np.testing.assert_allclose(ge[k], gt[k], rtol=1e-4, atol=1e-5, err_msg=k)
    for k in bt:
        np.testing.assert_allclose(be[k], bt[k], rtol=1e-5, atol=1e-6, err_msg=k)
    # Composite layers (pooling by averaging, softplus) record several nodes where torch
    # records one; every other layer's node is torch's.
    if name not in COMPOSITE:
        assert ne == nt
    assert re == rt


COMPOSITE = {"AvgPool2d", "Softplus", "Identity"}


def test_batchnorm_eval_uses_running_statistics_like_torch():
    t_mod, e_mod = torch.nn.BatchNorm1d(3), engine.nn.BatchNorm1d(3)
    for step in range(3):
        data = _data((5, 3), seed=step)
        t_mod(torch.tensor(data))
        e_mod(engine.tensor(data))
    t_mod.eval()
    e_mod.eval()
    data = _data((4, 3), seed=9)
    np.testing.assert_allclose(e_mod(engine.tensor(data)).detach().numpy(),
                               t_mod(torch.tensor(data)).detach().numpy(), rtol=1e-5, atol=1e-6)
    assert int(e_mod.num_batches_tracked) == int(t_mod.num_batches_tracked) == 3
    # In eval mode the statistics are constants: the gradients, and torch's one node, still.
    out = {}
    for lib, mod in ((torch, t_mod), (engine, e_mod)):
        x = lib.tensor(data, requires_grad=True)
        y = mod(x)
        (y * y).sum().backward()
        out[lib] = (x.grad.numpy().copy(), mod.weight.grad.numpy().copy(),
                    mod.bias.grad.numpy().copy(), y.grad_fn.name())
    for e, t in zip(out[engine][:3], out[torch][:3], strict=True):
        np.testing.assert_allclose(e, t, rtol=1e-5, atol=1e-6)
    assert out[engine][3] == out[torch][3] == "NativeBatchNormBackward0"


POOLS = [  # (input shape, kernel, stride, padding, dilation, ceil_mode)
    ((1, 1, 5, 5), 2, None, 0, 1, True),
    ((2, 3, 6, 7), 3, 2, 1, 1, True),
    ((2, 3, 7, 6), (3, 2), (2, 3), (1, 0), 1, True),
    ((1, 2, 9, 9), 3, 2, 1, 2, True),
    ((1, 2, 8, 8), 3, 3, 1, 1, True),  # the last ceil window would start in the padding
    ((2, 2, 6, 6), 2, 2, 0, 1, False),
    ((3, 5, 5), 3, 2, 1, 1, True),  # unbatched
]


@pytest.mark.parametrize("geometry", POOLS, ids=str)
def test_max_pool2d_ceil_mode_and_indices_match_torch(geometry):
    shape, kernel, stride, padding, dilation, ceil = geometry
    # Repeated values make ties: the first maximum of a window wins in both.
    data = np.round(_data(shape, seed=3) * 2) / 2
    out = {}
    for lib in (torch, engine):
        x = lib.tensor(data, requires_grad=True)
        y, idx = lib.nn.functional.max_pool2d(x, kernel, stride, padding, dilation,
                                              ceil_mode=ceil, return_indices=True)
        layer = lib.nn.MaxPool2d(kernel, stride, padding, dilation, return_indices=True,
                                 ceil_mode=ceil)
        y2, idx2 = layer(x)
        w = lib.tensor(np.linspace(-1, 1, y.numel(), dtype=np.float32).reshape(tuple(y.shape)))
        (y * w).sum().backward()
        out[lib] = (y.detach().numpy(), idx.numpy(), str(idx.dtype).rsplit(".")[-1],
                    x.grad.numpy(), y.grad_fn.name(), y2.detach().numpy(), idx2.numpy())
    e, t = out[engine], out[torch]
    assert e[0].shape == t[0].shape
    np.testing.assert_array_equal(e[0], t[0])
    np.testing.assert_array_equal(e[1], t[1])
    assert e[2] == t[2] == "int64"
    np.testing.assert_allclose(e[3], t[3], rtol=1e-6)
    assert e[4] == t[4]
    np.testing.assert_array_equal(e[5], t[5])
    np.testing.assert_array_equal(e[6], t[6])


def test_embedding_with_padding_matches_torch():
    t_mod = torch.nn.Embedding(6, 3, padding_idx=1)
    e_mod = engine.nn.Embedding(6, 3, padding_idx=1)
    _copy_weights(t_mod, e_mod)
    idx = [[1, 2, 2], [5, 1, 0]]
    for lib, mod in ((torch, t_mod), (engine, e_mod)):
        y = mod(lib.tensor(idx))
        (y * y).sum().backward()
    np.testing.assert_allclose(e_mod.weight.grad.numpy(), t_mod.weight.grad.numpy(), rtol=1e-6)
    assert not e_mod.weight.grad.numpy()[1].any()


def test_dropout_scales_kept_elements_and_is_identity_in_eval():
    engine.manual_seed(0)
    d = engine.nn.Dropout(0.25)
    x = engine.ones(1000)
    y = d(x).numpy()
    assert set(np.unique(y)) <= {0.0, np.float32(1 / 0.75)}
    assert 0.15 < (y == 0).mean() < 0.35
    d.eval()
    assert d(x) is x


LOSSES = {
    "MSELoss": (lambda nn: nn.MSELoss(), "real"),
    "MSELoss sum": (lambda nn: nn.MSELoss(reduction="sum"), "real"),
    "L1Loss": (lambda nn: nn.L1Loss(), "real"),
    "SmoothL1Loss": (lambda nn: nn.SmoothL1Loss(beta=0.5), "real"),
    "HuberLoss": (lambda nn: nn.HuberLoss(delta=0.7, reduction="none"), "real"),
    "HuberLoss mean": (lambda nn: nn.HuberLoss(delta=0.7), "real"),
    "SmoothL1Loss beta 0": (lambda nn: nn.SmoothL1Loss(beta=0.0, reduction="sum"), "real"),
    "BCELoss": (lambda nn: nn.BCELoss(), "prob"),
    "BCELoss weight none": (lambda nn: nn.BCELoss(weight=nn.Parameter.__mro__[1]([2.0, 0.5, 1.0,
                                                                                 1.0]),
                                                  reduction="none"), "prob"),
    "BCEWithLogitsLoss": (lambda nn: nn.BCEWithLogitsLoss(), "binary"),
    "BCEWithLogitsLoss pos_weight": (
        lambda nn: nn.BCEWithLogitsLoss(pos_weight=nn.Parameter.__mro__[1]([2.0, 0.5, 1.0, 1.0]),
                                        reduction="sum"), "binary"),
    "CrossEntropyLoss": (lambda nn: nn.CrossEntropyLoss(), "class"),
    "CrossEntropyLoss none": (lambda nn: nn.CrossEntropyLoss(reduction="none"), "class"),
    "NLLLoss": (lambda nn: nn.NLLLoss(), "class"),
}
NODE_NAMES = {"MSELoss": "MseLossBackward0", "CrossEntropyLoss": "NllLossBackward0",
              "NLLLoss": "NllLossBackward0", "SmoothL1Loss": "SmoothL1LossBackward0",
              "HuberLoss": "HuberLossBackward0", "BCELoss": "BinaryCrossEntropyBackward0",
              "BCEWithLogitsLoss": "BinaryCrossEntropyWithLogitsBackward0"}


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_matches_torch(name):
    make, kind = LOSSES[name]
    raw = _data((3, 4), seed=1)
    results = {}
    for lib in (engine, torch):
        x = lib.tensor(raw, requires_grad=True)
        if kind == "prob":
            inp, target = x.sigmoid(), lib.tensor(np.linspace(0, 1, 12, dtype=np.float32)
                                                  .reshape(3, 4))
        elif kind == "binary":
            inp, target = x, lib.tensor((raw > 0).astype(np.float32))
        elif kind == "class":
            inp, target = x, lib.tensor([0, 3, 1])
        else:
            inp, target = x, lib.tensor(_data((3, 4), seed=2))
        loss = make(lib.nn)(inp, target)
        loss.sum().backward()
        results[lib] = (loss.detach().numpy().copy(), x.grad.numpy().copy(), loss.grad_fn.name())
    (le, ge, ne), (lt, gt, nt) = results[engine], results[torch]
    np.testing.assert_allclose(le, lt, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ge, gt, rtol=1e-5, atol=1e-6)
    assert ne == nt
    base = name.split()[0]
    if base in NODE_NAMES and name != "SmoothL1Loss beta 0":
        assert ne == NODE_NAMES[base]


OPTIMIZERS = {
    "SGD nesterov": ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    "Adam amsgrad": ("Adam", {"lr": 0.05, "amsgrad": True, "weight_decay": 0.1}),
    "AdamW": ("AdamW", {"lr": 0.05}),
    "RMSprop": ("RMSprop", {"lr": 0.01}),
    "RMSprop centred": ("RMSprop", {"lr": 0.01, "momentum": 0.9, "centered": True,
                                    "weight_decay": 0.1}),
    "Adagrad": ("Adagrad", {"lr": 0.1, "lr_decay": 0.01, "initial_accumulator_value": 0.1}),
}
SCHEDULERS = {
    "StepLR": lambda lib, opt: lib.optim.lr_scheduler.StepLR(opt, 2, gamma=0.5),
    "LambdaLR": lambda lib, opt: lib.optim.lr_scheduler.LambdaLR(opt, lambda e: 1 / (1 + e)),
    "MultiStepLR": lambda lib, opt: lib.optim.lr_scheduler.MultiStepLR(opt, [1, 3], 0.3),
    "ExponentialLR": lambda lib, opt: lib.optim.lr_scheduler.ExponentialLR(opt, 0.9),
    "CosineAnnealingLR": lambda lib, opt: lib.optim.lr_scheduler.CosineAnnealingLR(opt, 4),
}


@pytest.mark.parametrize("scheduler", sorted(SCHEDULERS))
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizer_and_scheduler_match_torch(name, scheduler):
    cls, kwargs = OPTIMIZERS[name]
    results = {}
    for lib in (engine, torch):
        w = lib.tensor([[0.5, -1.0, 2.0], [0.1, 0.2, -0.3]], requires_grad=True)
        opt = getattr(lib.optim, cls)([w], **kwargs)
        sched = SCHEDULERS[scheduler](lib, opt)
        lrs = []
        for _ in range(6):
            opt.zero_grad()
            ((w * w).sum() + w.sin().sum()).backward()
            opt.step()
            sched.step()
            lrs.append(sched.get_last_lr()[0])
        results[lib] = (w.detach().numpy().copy(), lrs)
    np.testing.assert_allclose(results[engine][0], results[torch][0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(results[engine][1], results[torch][1], rtol=1e-12)


def test_clip_grad_norm_matches_torch():
    results = {}
    for lib in (engine, torch):
        a = lib.tensor([3.0, 4.0], requires_grad=True)
        b = lib.tensor([[1.0, -2.0]], requires_grad=True)
        ((a * a).sum() + (b * 3).sum()).backward()
        total = lib.nn.utils.clip_grad_norm_([a, b], max_norm=2.0)
        results[lib] = (float(total), a.grad.numpy().copy(), b.grad.numpy().copy())
    for e, t in zip(results[engine], results[torch], strict=True):
        np.testing.assert_allclose(e, t, rtol=1e-6)


def test_module_containers_register_their_parameters_like_torch():
    def build(nn):
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.blocks = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
                self.heads = nn.ModuleDict({"a": nn.Linear(2, 1), "b": nn.Linear(2, 3)})

            def forward(self, x):
                for block in self.blocks:
                    x = block(x)
                return self.heads["a"](x)

        return Net()

    names_e = [n for n, _ in build(engine.nn).named_parameters()]
    names_t = [n for n, _ in build(torch.nn).named_parameters()]
    assert names_e == names_t
    assert repr(build(engine.nn)) == repr(build(torch.nn))


def test_save_and_load_round_trip_a_state_dict(tmp_path):
    model = engine.nn.Sequential(engine.nn.Linear(3, 4), engine.nn.BatchNorm1d(4))
    opt = engine.optim.Adam(model.parameters(), lr=0.1)
    model(engine.randn(5, 3)).sum().backward()
    opt.step()
    path = tmp_path / "model.pt"
    engine.save({"model": model.state_dict(), "opt": opt.state_dict(), "epoch": 3}, path)
    loaded = engine.load(path)
    assert loaded["epoch"] == 3
    fresh = engine.nn.Sequential(engine.nn.Linear(3, 4), engine.nn.BatchNorm1d(4))
    fresh.load_state_dict(loaded["model"])
    for (k, a), (_, b) in zip(model.state_dict().items(), fresh.state_dict().items(),
                              strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=k)
    opt2 = engine.optim.Adam(fresh.parameters(), lr=0.1)
    opt2.load_state_dict(loaded["opt"])
    assert float(opt2.state[fresh[0].weight]["step"]) == 1.0


def test_load_refuses_other_files_without_running_code(tmp_path):
    import pickle

    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(RuntimeError, match="not a file written by engine.save"):
        engine.load(path)
    with pytest.raises(TypeError, match="state_dict"):
        engine.save(engine.nn.Linear(2, 2), tmp_path / "model.pt")


def test_max_pool2d_sends_a_nan_window_gradient_where_torch_does():
    data = np.array([[[[1.0, np.nan, 3.0, 3.0], [np.nan, 2.0, 3.0, 1.0],
                       [0.0, 0.0, np.nan, 0.0], [0.0, 0.0, 0.0, 0.0]]]])
    out = {}
    for lib in (torch, engine):
        x = lib.tensor(data, requires_grad=True)
        y, idx = lib.nn.functional.max_pool2d(x, 2, return_indices=True)
        y.sum().backward()
        out[lib] = (y.detach().numpy(), idx.numpy(), x.grad.numpy())
    for e, t in zip(out[engine], out[torch], strict=True):
        np.testing.assert_array_equal(e, t)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gelu_gradient_from_its_output_matches_torch_at_the_edges(dtype):
    # backward reads Phi(x) off the forward's output (gelu(x) / x): x = 0, tiny, very
    # negative (Phi underflows) and large, and the second derivative through it; subnormal
    # x (5e-324, -1e-310, and 1e-40 in float32) make gelu(x) lose its digits: 0.5 there.
    data = np.array([0.0, -0.0, 1e-300, -1e-30, 5e-324, -1e-310, 1e-40, -10.0, -40.0, -38.2,
                     3.0, 0.7, -1.3])
    out = {}
    for lib in (torch, engine):
        x = lib.tensor(data, dtype=getattr(lib, dtype), requires_grad=True)
        (g,) = lib.autograd.grad(lib.nn.functional.gelu(x).sum(), x, create_graph=True)
        (g2,) = lib.autograd.grad(g.sum(), x)
        out[lib] = (g.detach().numpy(), g2.numpy())
    tol = 1e-12 if dtype == "float64" else 1e-6
    for e, t in zip(out[engine], out[torch], strict=True):
        np.testing.assert_allclose(e, t, rtol=tol, atol=tol)


@pytest.mark.parametrize("call", [
    lambda F, a, b: F.smooth_l1_loss(a, b, beta=-1.0),
    lambda F, a, b: F.huber_loss(a, b, delta=0.0),
    lambda F, a, b: F.huber_loss(a, b, delta=-1.0),
])
def test_loss_parameter_errors_match_torch(call):
    messages = []
    for lib in (torch, engine):
        with pytest.raises(RuntimeError) as err:
            call(lib.nn.functional, lib.zeros(3), lib.ones(3))
        messages.append(str(err.value))
    assert messages[0] == messages[1]


def test_max_pool2d_of_integers_with_padding_and_ceil_mode_matches_torch():
    results = []
    for lib in (torch, engine):
        x = lib.arange(36).reshape(1, 1, 6, 6) - 20
        results.append([lib.nn.functional.max_pool2d(x, 3, stride=2, **kw).tolist()
                        for kw in ({"ceil_mode": True}, {"padding": 1})])
    assert results[0] == results[1]


def test_batch_norm_in_eval_mode_without_running_statistics_fails_as_torch():
    messages = []
    for lib in (torch, engine):
        with pytest.raises(RuntimeError) as err:
            lib.nn.functional.batch_norm(lib.ones(4, 3), None, None, training=False)
        messages.append(str(err.value))
    assert messages[0] == messages[1]
