"""Check a hand-written NumPy gradient, the `jac=` of scipy.optimize, before optimizing.

Run: python examples/numpy_scipy.py
"""

import numpy as np
from scipy.optimize import check_grad, minimize

from engine.autograd import GradcheckError, numpy_gradcheck


def rosenbrock(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def rosenbrock_grad(x):
    g = np.zeros_like(x)
    g[:-1] = -400.0 * x[:-1] * (x[1:] - x[:-1] ** 2) - 2.0 * (1.0 - x[:-1])
    g[1:] += 200.0 * (x[1:] - x[:-1] ** 2)
    return g


def rosenbrock_grad_typo(x):
    g = rosenbrock_grad(x)
    g[-1] = 200.0 * (x[-1] - x[-2])  # a typo: x[-2] where x[-2] ** 2 belongs
    return g


x0 = np.array([1.3, 0.7, 0.8, 1.9, 1.2])
print(f"scipy check_grad, right gradient: {check_grad(rosenbrock, rosenbrock_grad, x0):.3g}")
print(f"scipy check_grad, with the typo:  {check_grad(rosenbrock, rosenbrock_grad_typo, x0):.3g}")
print("numpy_gradcheck, right gradient:", numpy_gradcheck(rosenbrock, rosenbrock_grad, x0))
try:
    numpy_gradcheck(rosenbrock, rosenbrock_grad_typo, x0)
except GradcheckError as error:
    print("numpy_gradcheck, with the typo:", error)
result = minimize(rosenbrock, x0, jac=rosenbrock_grad, method="BFGS")
print(f"BFGS with the checked gradient: {result.nit} iterations, x = {np.round(result.x, 4)}")
