"""Second derivatives and functional helpers, as research notebooks use them: autograd.grad
with create_graph, a Hessian-vector product, jacobian and hessian, hooks and retain_grad.

Modeled on the "higher-order gradients" recipes of the PyTorch documentation
(docs/source/notes/autograd.rst and the torch.autograd.functional reference).
"""
import torch

x = torch.tensor([1.0, -2.0, 0.5], requires_grad=True)
y = (x ** 3).sum() + (x[0] * x[1]).sin()
(g,) = torch.autograd.grad(y, x, create_graph=True)
print(g)
v = torch.tensor([1.0, 0.0, 2.0])
(hv,) = torch.autograd.grad(g, x, grad_outputs=v)
print(hv)


def f(a, b):
    return (a * b.exp()).sum()


a, b = torch.tensor([1.0, 2.0]), torch.tensor([0.5, -0.5])
print(torch.autograd.functional.jacobian(f, (a, b)))
print(torch.autograd.functional.hessian(f, (a, b)))

w = torch.tensor([2.0, 3.0], requires_grad=True)
h = w * w
h.retain_grad()
h.register_hook(lambda grad: grad * 10)
out = h.sum() * 2
out.backward()
print(h.grad, w.grad)
print(w.is_leaf, h.is_leaf, out.grad_fn)
