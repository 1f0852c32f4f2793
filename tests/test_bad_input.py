"""Every case of the bad-input table (tests/bad_inputs.py) gets its clear answer, and nothing is written over."""

import collections

import pytest

from bad_inputs import Env, attempt, cases

CASES = cases()


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return Env(tmp_path_factory.mktemp("bad-input"))


def test_the_table_is_large_and_covers_every_category():
    per_category = collections.Counter(c.category for c in CASES)
    assert len(CASES) >= 100, len(CASES)
    assert {"config file", "flag", "checkpoint", "export", "data", "npz", "text", "python api"} <= set(per_category)
    assert len({(c.category, c.name) for c in CASES}) == len(CASES), "two cases share a name"


@pytest.mark.parametrize("case", CASES, ids=[f"{c.category}: {c.name}" for c in CASES])
def test_bad_input(case, env):
    outcome = attempt(case, env)
    wanted = "honoured" if case.expect is None else "clear"
    assert outcome.kind == wanted, f"{outcome.kind} (exit {outcome.code}): {outcome.detail or outcome.lines[-3:]}"
