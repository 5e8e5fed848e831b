"""Counts the examples each fuzz test ran, for the one-line summary at the end of the session
(the issue asks to say how many ran)."""

from __future__ import annotations

import functools
from collections import Counter

RAN: Counter[str] = Counter()


def counted(test):
    """Put under `@given`: counts every example Hypothesis runs through `test`."""
    @functools.wraps(test)
    def run(*args, **kwargs):
        RAN[test.__name__] += 1
        return test(*args, **kwargs)
    return run


def summary() -> str | None:
    if not RAN:
        return None
    return f"fuzz: {sum(RAN.values())} examples ran in {len(RAN)} property tests"
