"""backward and autograd.grad: accumulation, retain_graph, hooks, create_graph, inputs=,
in-place rules and version counters, and graphs deeper than Python's recursion limit."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

import engine
from engine.autograd.graph import FREED_MESSAGE, is_shape_only


def test_gradients_accumulate_across_backward_calls_and_diamonds():
    x = engine.tensor(3.0, requires_grad=True)
    (x * 2).backward()
    (x * 3).backward()
    assert x.grad.item() == 5.0
    y = x + x  # the same input twice
    x.grad.zero_()
    y.backward()
    assert x.grad.item() == 2.0


def test_gradient_of_add_is_not_shared_between_leaves():
    a = engine.tensor([1.0], requires_grad=True)
    b = engine.tensor([1.0], requires_grad=True)
    (a + b).sum().backward()
    a.grad.add_(1)
    assert b.grad.tolist() == [1.0]


def test_implicit_gradient_only_for_scalars_and_torch_errors():
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar"):
        (engine.tensor([1.0, 2.0], requires_grad=True) * 2).backward()
    with pytest.raises(RuntimeError, match="element 0 of tensors does not require grad and "
                                           "does not have a grad_fn"):
        engine.tensor(1.0).backward()
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    (x * 2).backward(engine.tensor([1.0, 10.0]))
    assert x.grad.tolist() == [2.0, 20.0]


def test_second_backward_through_freed_graph_raises_unless_retained():
    x = engine.tensor(3.0, requires_grad=True)
    y = x * x
    y.backward(retain_graph=True)
    y.backward()
    assert x.grad.item() == 12.0
    with pytest.raises(RuntimeError) as err:
        y.backward()
    assert str(err.value) == FREED_MESSAGE
    z = x + 1  # add saves nothing: torch allows it
    z.backward()
    z.backward()


def test_retain_grad_keeps_non_leaf_gradients():
    x = engine.tensor(3.0, requires_grad=True)
    y = x * 2
    y.retain_grad()
    (y * 3).backward()
    assert (x.grad.item(), y.grad.item(), y.retains_grad) == (6.0, 3.0, True)


def test_hooks_chain_and_leaf_hooks_run_before_accumulation():
    x = engine.tensor(2.0, requires_grad=True)
    seen = []
    x.register_hook(lambda g: seen.append(g.item()) or g * 10)
    y = x * 3
    y.register_hook(lambda g: g * 2)
    h = y.register_hook(lambda g: g + 1)
    y.backward()
    assert seen == [9.0] and x.grad.item() == 90.0
    h.remove()
    x.grad = None
    (x * 3).backward()
    assert x.grad.item() == 30.0
    with pytest.raises(RuntimeError, match="cannot register a hook on a tensor that doesn't"):
        engine.tensor(1.0).register_hook(lambda g: g)


def test_create_graph_gives_higher_derivatives():
    x = engine.tensor(2.0, requires_grad=True)
    y = x ** 3
    (g,) = engine.autograd.grad(y, x, create_graph=True)
    (g2,) = engine.autograd.grad(g, x, create_graph=True)
    (g3,) = engine.autograd.grad(g2, x)
    assert (g.item(), g2.item(), g3.item()) == (12.0, 12.0, 6.0)
    x = engine.tensor(0.5, requires_grad=True)
    y = x.exp().sin()
    y.backward(create_graph=True)
    first = x.grad
    x.grad = None
    first.backward()
    e = np.exp(0.5)
    assert np.isclose(x.grad.item(), e * np.cos(e) - e * e * np.sin(e), rtol=1e-6)


def test_grad_never_touches_dot_grad_and_checks_unused():
    x = engine.tensor(1.0, requires_grad=True)
    w = engine.tensor(2.0, requires_grad=True)
    (g,) = engine.autograd.grad(x * 3, x)
    assert g.item() == 3.0 and x.grad is None
    with pytest.raises(RuntimeError, match="index 1 appears to not have been used"):
        engine.autograd.grad(x * 3, [x, w])
    assert engine.autograd.grad(x * 3, [x, w], allow_unused=True)[1] is None
    y = x * 2
    z = y * y
    (gy,) = engine.autograd.grad(z, y)  # the gradient w.r.t. a non-leaf
    assert gy.item() == 4.0


def test_backward_inputs_restricts_accumulation():
    a = engine.tensor(1.0, requires_grad=True)
    b = engine.tensor(2.0, requires_grad=True)
    (a * b).backward(inputs=[a])
    assert a.grad.item() == 2.0 and b.grad is None


def test_inplace_on_leaf_requiring_grad_is_an_error():
    a = engine.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used "
                                           "in an in-place operation."):
        a.add_(1)
    with pytest.raises(RuntimeError, match="a view of a leaf Variable that requires grad"):
        a[0].add_(1)
    with engine.no_grad():
        a -= 0.5 * engine.ones(2)
        a[0] = 10.0
    assert a.tolist() == [10.0, 1.5] and a.is_leaf and a.requires_grad


def test_modifying_a_saved_tensor_breaks_backward_with_torch_message():
    a = engine.tensor([1.0, 2.0], requires_grad=True)
    b = a * 1
    c = b * b
    b.add_(1)
    with pytest.raises(RuntimeError, match=r"one of the variables needed for gradient "
                                           r"computation has been modified by an inplace "
                                           r"operation: .* is at version 1; expected version 0"):
        c.sum().backward()
    # Not saved for a gradient that is needed: torch allows it.
    x = engine.tensor([1.0], requires_grad=True)
    y = x * 1
    z = y * 2.0
    y.add_(1)
    z.sum().backward()
    assert x.grad.tolist() == [2.0]


def test_inplace_ops_record_history():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    y = x * 1
    y.mul_(x)
    y.add_(3)
    assert y.grad_fn.name() == "AddBackward0"
    y.sum().backward()
    assert x.grad.tolist() == [2.0, 4.0]
    x.grad = None
    z = x * 2
    z[0] = x[1] * 5
    assert z.grad_fn.name() == "torch::autograd::CopySlices"  # torch's own spelling
    z.sum().backward()
    assert x.grad.tolist() == [0.0, 7.0]


def test_graph_has_no_reference_cycles():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    mid = x * 2
    tensor_ref = weakref.ref(mid)
    value_ref = weakref.ref(mid._data)
    y = mid.sin().tanh()  # (sin's rule reads its input)
    gc.disable()
    try:
        del mid
        assert tensor_ref() is None  # the graph keeps the value, not the tensor object
        assert value_ref() is not None
        del y
        assert value_ref() is None  # the whole graph freed by reference counting alone
    finally:
        gc.enable()


def test_a_value_no_rule_reads_is_freed_when_recorded():
    # add's rules and tanh's read no input (tanh reads its output): their nodes keep shapes,
    # as torch's AddBackward0 and TanhBackward0 save nothing of them.
    x = engine.tensor(np.ones((64, 64)), requires_grad=True)
    mid = x * 2
    value_ref = weakref.ref(mid._data)
    y = (mid + 1).tanh()
    del mid
    assert value_ref() is None
    tanh_node = y.grad_fn
    add_node = tanh_node.next_functions[0][0]
    assert is_shape_only(tanh_node._args[0]) and is_shape_only(add_node._args[0])
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * (1 - np.tanh(3.0) ** 2))


def test_blame_replays_nodes_at_their_real_inputs():
    from engine.autograd.blame import blame_graph
    from engine.autograd.graph import keeping_inputs

    x = engine.tensor(np.linspace(-1, 1, 12).reshape(3, 4), dtype=engine.float64,
                      requires_grad=True)
    with keeping_inputs():
        y = ((x * 3) + 1).tanh().sum()
    assert blame_graph([y]).culprit is None
    y = ((x * 3) + 1).tanh().sum()  # recorded as usual: add's node kept only a shape
    with pytest.raises(RuntimeError, match="keeping_inputs"):
        blame_graph([y])


def test_a_kept_value_rebuilt_in_backward_keeps_its_history():
    # The node behind `mid.exp()` keeps mid's value; the rebuilt input must still lead to x
    # when the backward is itself differentiated.
    x = engine.tensor(0.5, dtype=engine.float64, requires_grad=True)
    mid = x * 3
    y = (mid * mid).exp()
    del mid
    (g,) = engine.autograd.grad(y, x, create_graph=True)
    (gg,) = engine.autograd.grad(g, x)
    u = 9 * 0.25
    assert g.item() == pytest.approx(18 * 0.5 * np.exp(u))
    assert gg.item() == pytest.approx((18 + 18 * 18 * 0.25) * np.exp(u))


def test_writing_into_a_kept_intermediate_is_caught_at_backward():
    # As in torch: the value the node kept was changed, so backward refuses (0-d and 1-d).
    for value in (2.0, [2.0, 3.0]):
        a = engine.tensor(value, requires_grad=True)
        b = a * 2
        c = b ** 2
        b.add_(1)
        with pytest.raises(RuntimeError, match=r"output 0 of Add, is at version 1; "
                                               r"expected version 0"):
            c.sum().backward()
    # A view or a detached alias written later is seen the same way.
    a = engine.tensor([2.0, 3.0], requires_grad=True)
    b = a * 2
    c = b ** 2
    b.detach().mul_(5)
    with pytest.raises(RuntimeError, match="is at version 1; expected version 0"):
        c.sum().backward()


def test_writing_into_a_leaf_after_use_is_caught_at_backward():
    w = engine.tensor(2.0, requires_grad=True)
    y = w * w
    with engine.no_grad():
        w -= 0.5
    with pytest.raises(RuntimeError, match=r"\[engine.FloatTensor \[\]\] is at version 1"):
        y.backward()


def test_deep_chain_needs_no_recursion():
    x = engine.tensor([0.5, 1.0], requires_grad=True)
    y = x
    for _ in range(50_000):
        y = y * 1.0 + 0.0
    y.sum().backward()
    assert x.grad.tolist() == [1.0, 1.0]


def test_jacobian_and_hessian():
    from engine.autograd.functional import hessian, jacobian

    x = engine.tensor([1.0, 2.0], dtype=engine.float64)
    j = jacobian(lambda t: t ** 2, x)
    assert j.tolist() == [[2.0, 0.0], [0.0, 4.0]]
    h = hessian(lambda t: (t[0] ** 2) * t[1], x)
    assert h.tolist() == [[4.0, 2.0], [2.0, 0.0]]
    a, b = jacobian(lambda u, v: u * v, (x, x * 3))
    assert a.tolist() == [[3.0, 0.0], [0.0, 6.0]] and b.tolist() == [[1.0, 0.0], [0.0, 2.0]]


def test_matches_torch_on_a_small_network():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s) for s in ((4, 3), (3, 5), (5,), (5, 2))]
    grads = []
    for lib in (engine, torch):
        x, w1, b1, w2 = (lib.tensor(a, requires_grad=i > 0) for i, a in enumerate(arrays))
        h = (x @ w1 + b1).tanh()
        out = (h @ w2).sigmoid().log1p().mean() + (w1 ** 2).sum() * 0.01
        out.backward()
        grads.append([t.grad.numpy().copy() for t in (w1, b1, w2)] + [out.item()])
    for a, b in zip(*grads, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_retained_gradients_do_not_corrupt_a_double_backward():
    """A bug found by the expression-language tests: retain_grad + create_graph."""
    x = engine.tensor(1.0, dtype=engine.float64, requires_grad=True)
    y = engine.tensor(0.5, dtype=engine.float64, requires_grad=True)
    a, b = x.sin(), y ** 2
    c = (-b).exp()
    for t in (a, b, c):
        t.retain_grad()
    _, gy = engine.autograd.grad(a * c, [x, y], create_graph=True)
    (gyy,) = engine.autograd.grad(gy, y)
    # d2/dy2 of sin(x) exp(-y^2) = sin(x) exp(-y^2) (4y^2 - 2)
    assert np.isclose(gyy.item(), np.sin(1.0) * np.exp(-0.25) * (4 * 0.25 - 2), rtol=1e-12)


def test_accumulating_into_a_grad_with_history_is_out_of_place():
    x = engine.tensor(2.0, dtype=engine.float64, requires_grad=True)
    (x ** 3).backward(create_graph=True)
    first = x.grad  # 3x^2, with a graph
    (x * 1.0).backward()
    assert first.item() == 12.0 and x.grad.item() == 13.0
    (second,) = engine.autograd.grad(first, x)
    assert second.item() == 12.0  # the graph behind the first gradient is intact


def test_one_gradient_reaching_two_leaves_is_not_shared():
    # add passes the same gradient to both inputs; between plain nodes it flows as an array,
    # and each leaf must still own its .grad (a second backward accumulates into each).
    a = engine.tensor([1.0, 2.0], requires_grad=True)
    b = engine.tensor([3.0, 4.0], requires_grad=True)
    for _ in range(2):
        ((a + b) * 2).sum().backward()
    assert not np.shares_memory(a.grad.numpy(), b.grad.numpy())
    assert a.grad.tolist() == [4.0, 4.0] and b.grad.tolist() == [4.0, 4.0]
    c = engine.tensor(1.5, requires_grad=True)
    d = engine.tensor(2.5, requires_grad=True)
    (c + d).backward()
    (c + d).backward()
    assert c.grad.item() == 2.0 and d.grad.item() == 2.0


def test_a_write_after_create_graph_is_still_caught():
    # create_graph rules view the tensors rebuilt over kept values (b.mT in matmul's rule);
    # those share the value's counter, so a later write into the original is still seen,
    # for an intermediate and for a leaf, and named as torch names it.
    a = engine.tensor([[1.0, 2.0]], requires_grad=True)
    w = engine.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    h = a * 2
    y = (h @ w).sum()
    engine.autograd.grad(y, w, create_graph=True)
    h.add_(1)
    with pytest.raises(RuntimeError, match=r"output 0 of Add, is at version 1; expected "
                                           r"version 0"):
        y.backward()
    y = (a @ w).sum()
    engine.autograd.grad(y, a, create_graph=True)
    with engine.no_grad():
        w.mul_(2)
    with pytest.raises(RuntimeError, match=r"\[engine.FloatTensor \[2, 2\]\] is at version 1"):
        y.backward()


def test_writes_before_a_record_pass_and_writes_after_it_are_caught():
    # A node skips its version check when no tensor was written since it was recorded
    # (tensor.WRITES); a write after the record, to what it saved, must still be caught.
    a = engine.tensor([1.0, 2.0], requires_grad=True)
    with engine.no_grad():
        a.mul_(2)  # before any graph: not an error
    (a * a).sum().backward()
    assert a.grad.tolist() == [4.0, 8.0]
    b = a.clone()
    y = b * b  # saves b
    z = (a * 3).sum()  # recorded before the write below, saves nothing it writes
    b.add_(1)
    z.backward()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


_OPERANDS = {
    "f32": lambda: engine.tensor([0.7, 1.3, 1.9], requires_grad=True),
    "f64": lambda: engine.tensor([0.6, 1.1, 1.7], dtype=engine.float64, requires_grad=True),
    "f32 0-d": lambda: engine.tensor(1.3, requires_grad=True),
    "f64 0-d": lambda: engine.tensor(1.7, dtype=engine.float64, requires_grad=True),
    "f32 2x3": lambda: engine.tensor([[0.5, 1.5, 1.2], [1.1, 0.9, 1.8]], requires_grad=True),
    "int": lambda: engine.tensor([1, 2, 3]),
    "float": lambda: 1.25,
    "np.float64": lambda: np.float64(1.25),
    "np.float32": lambda: np.float32(1.25),
}


_NUMBER_KINDS = {"float", "np.float64", "np.float32"}


@pytest.mark.parametrize(("left", "right"), [
    (a, b) for a in sorted(_OPERANDS) for b in sorted(_OPERANDS)
    if not (a in _NUMBER_KINDS and b in _NUMBER_KINDS)  # two numbers make no tensor
])
def test_array_path_and_tensor_path_agree_on_mixed_dtypes(left, right):
    # Without create_graph, plain rules run on arrays and check operand dtypes only where the
    # record saw promotion (FIT_ALL); with it, every rule runs on tensors. Both must give the
    # same gradients, to the bit and in the same dtypes, whatever mix of operands.
    graphs = [lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a * b, lambda a, b: a / b,
              lambda a, b: (a * b).tanh() * a, lambda a, b: (a - b) ** 2 * b,
              lambda a, b: (a * b).exp().mean() + (a + b).sum()]
    for graph in graphs:
        results = []
        for create_graph in (False, True):
            a, b = _OPERANDS[left](), _OPERANDS[right]()
            out = graph(a, b)
            if not out.requires_grad:
                break
            out.sum().backward(create_graph=create_graph)
            results.append([(t.grad.dtype, t.grad.detach().numpy().tobytes())
                            for t in (a, b) if isinstance(t, engine.Tensor) and t.requires_grad])
        if results:
            assert results[0] == results[1]
