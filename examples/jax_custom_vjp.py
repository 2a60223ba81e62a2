"""Check JAX code: a plain function and two jax.custom_vjp rules, one deliberately wrong.

Run: python examples/jax_custom_vjp.py
"""

import jax
import jax.numpy as jnp

from engine.autograd import GradcheckError, gradcheck, gradgradcheck


@jax.custom_vjp
def softplus(x):
    return jnp.logaddexp(x, 0.0)


softplus.defvjp(lambda x: (softplus(x), x), lambda x, g: (g * jax.nn.sigmoid(x),))


@jax.custom_vjp
def log_cosh(x):
    return jnp.log(jnp.cosh(x))


# Deliberately wrong: d/dx log(cosh(x)) = tanh(x), but only where x >= 0 here.
log_cosh.defvjp(lambda x: (log_cosh(x), x), lambda x, g: (g * jnp.abs(jnp.tanh(x)),))


def model(w, x):
    return jnp.sum(softplus(x @ w) ** 2)


x = jnp.linspace(-2.0, 2.0, 6, dtype=jnp.float32)
w = jnp.asarray([[0.5, -1.0], [1.5, 0.25], [-0.5, 2.0]], dtype=jnp.float32)
print(f"jax {jax.__version__}, x64 {'on' if jax.config.jax_enable_x64 else 'off'}")
print("softplus:", gradcheck(softplus, (x,)), "and second order:", gradgradcheck(softplus, (x,)))
print("model (both inputs checked):", gradcheck(model, (w, x.reshape(2, 3))))
try:
    gradcheck(log_cosh, (x,))
except GradcheckError as error:
    print("log_cosh:", error)
