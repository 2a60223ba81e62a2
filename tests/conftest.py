import os

from hypothesis import HealthCheck, settings

# CI draws the same examples on every run (derandomize), so a submission's CI result is
# reproducible; local runs keep exploring new random examples and remember failures.
settings.register_profile(
    "ci",
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=25, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
