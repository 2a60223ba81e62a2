"""The seed tutorial's snippets (../shared/seed-autograd-core.txt), run under
`import engine as torch`, print what the seed says they print."""

from __future__ import annotations

import contextlib
import io
import textwrap

import pytest

import engine

SNIPPETS = {
    "1 automatic differentiation": ("""
        x = torch.tensor(3.0, requires_grad=True)
        y = x * x + 2 * x + 1
        y.backward()
        print(x.grad)
    """, "tensor(8.)\n"),
    "2 computational graph": ("""
        a = torch.tensor(2.0, requires_grad=True)
        b = torch.tensor(3.0, requires_grad=True)
        c = a + b
        d = a * b
        e = c * d
        e.backward()
        print(a.grad)
        print(b.grad)
    """, "tensor(21.)\ntensor(16.)\n"),
    "3 requires_grad": ("""
        weights = torch.tensor([1.0, 2.0], requires_grad=True)
        inputs = torch.tensor([3.0, 4.0])
        output = (weights * inputs).sum()
        output.backward()
        print(weights.grad)
        print(inputs.grad)
    """, "tensor([3., 4.])\nNone\n"),
    "4 leaves": ("""
        x = torch.tensor(5.0, requires_grad=True)
        print(x.is_leaf)
        y = x * 2
        print(y.is_leaf)
        x = torch.tensor(3.0, requires_grad=True)
        y = x * 2
        y.retain_grad()
        z = y * 3
        z.backward()
        print(x.grad)
        print(y.grad)
    """, "True\nFalse\ntensor(6.)\ntensor(3.)\n"),
    "5 backpropagation": ("""
        x = torch.tensor(2.0, requires_grad=True)
        h = x + 1
        y = h * h
        y.backward()
        print(x.grad)
    """, "tensor(6.)\n"),
    "6 zeroing": ("""
        x = torch.tensor(3.0, requires_grad=True)
        y1 = x * 2
        y1.backward()
        print(x.grad)
        y2 = x * 3
        y2.backward()
        print(x.grad)
        x.grad.zero_()
        y2 = x * 3
        y2.backward()
        print(x.grad)
    """, "tensor(2.)\ntensor(5.)\ntensor(3.)\n"),
    "7 accumulation": ("""
        torch.manual_seed(0)
        data = torch.randn(32, 3)
        targets = data.sum(dim=1, keepdim=True)
        w = torch.zeros(3, 1, requires_grad=True)

        def grad_of(batches):
            w.grad = None
            for inputs, target in batches:
                loss = ((inputs @ w - target) ** 2).mean() / len(batches)
                loss.backward()
            return w.grad.clone()

        whole = grad_of([(data, targets)])
        parts = grad_of([(data[i:i + 8], targets[i:i + 8]) for i in range(0, 32, 8)])
        print(torch.allclose(whole, parts, atol=1e-6))
    """, "True\n"),
}


def run(code: str, lib) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(textwrap.dedent(code), {"torch": lib})  # our own fixed snippets, not user text
    return out.getvalue()


@pytest.mark.parametrize("section", sorted(SNIPPETS))
def test_seed_snippet_prints_what_the_seed_shows(section):
    code, expected = SNIPPETS[section]
    assert run(code, engine) == expected


# Section 7 draws random data, and the two libraries' random streams differ by design.
@pytest.mark.parametrize("section", sorted(s for s in SNIPPETS if not s.startswith("7")))
def test_seed_snippet_prints_what_torch_prints(section):
    torch = pytest.importorskip("torch")
    code, _ = SNIPPETS[section]
    assert run(code, engine) == run(code, torch)
