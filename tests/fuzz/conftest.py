"""Hypothesis settings for the fuzz tests, and the count of examples that ran.

CI runs a fixed, bounded number of examples per test (`AUTHSERVER_FUZZ_EXAMPLES`, default
`DEFAULT_EXAMPLES`), derandomized: the same inputs on every run, so that a red build is
reproducible and a green one does not depend on luck. A developer hunting for bugs raises the
number and sets `AUTHSERVER_FUZZ_RANDOM=1` to explore new inputs on every run.

The `world` and `registered` fixtures (one app, one signed-in account, a set of clients per
module) come from tests/flows/token_world.py; each fuzz module imports them.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

from .examples import summary

DEFAULT_EXAMPLES = 200  # per property test: about a minute for the directory on SQLite


def _examples() -> int:
    return int(os.environ.get("AUTHSERVER_FUZZ_EXAMPLES", DEFAULT_EXAMPLES))


settings.register_profile(
    "authserver-fuzz",
    max_examples=_examples(),
    derandomize=os.environ.get("AUTHSERVER_FUZZ_RANDOM") != "1",
    database=None,  # nothing written to .hypothesis/: derandomized runs need no replay store
    deadline=None,  # no timed assertions: a busy CI machine is slow, never wrong
    # The module's world is shared by every example on purpose (an Argon2 hash costs 0.2 s), and
    # inputs such as large bodies are slow to generate by design.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large, HealthCheck.filter_too_much],
    print_blob=True,
)
settings.load_profile("authserver-fuzz")


def pytest_terminal_summary(terminalreporter):
    line = summary()
    if line:
        terminalreporter.write_line(line)
