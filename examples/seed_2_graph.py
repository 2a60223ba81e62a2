"""Seed section 2: every calculation records a computational graph that backward() walks."""

import engine as torch


def print_graph(root: torch.Tensor) -> None:
    """Print the graph behind ``root`` as an indented tree, one node per line."""
    # An explicit stack rather than recursion, so long chains cannot hit the recursion limit.
    stack = [(root.grad_fn, 0)]
    while stack:
        node, depth = stack.pop()
        print("  " * depth + node.name().split("::")[-1])
        parents = [fn for fn, _ in node.next_functions if fn is not None]
        stack.extend((fn, depth + 1) for fn in reversed(parents))


# The seed's diagram: x = 3 flows through x * x and 2 * x into 16.
x = torch.tensor(3.0, requires_grad=True)
x_times_x = x * x
two_x = 2 * x
total = x_times_x + two_x
y = total + 1
print(f"x = {x.item():g}")
print(f"x * x = {x_times_x.item():g}")
print(f"2 * x = {two_x.item():g}")
print(f"{x_times_x.item():g} + {two_x.item():g} = {total.item():g}")
print(f"{total.item():g} + 1 = {y.item():g}")
print("graph of y, output first:")
print_graph(y)

# The seed's example: e = (a + b) * (a * b).
a = torch.tensor(2.0, requires_grad=True)
b = torch.tensor(3.0, requires_grad=True)

c = a + b  # Node 1: addition
d = a * b  # Node 2: multiplication
e = c * d  # Node 3: final result

# Graph built automatically!
e.backward()

print("e =", e)
print("de/da =", a.grad)  # d + c * b = 6 + 5 * 3 = 21
print("de/db =", b.grad)  # d + c * a = 6 + 5 * 2 = 16
