"""The benchmarks' variants are valid configs: a renamed or mistyped key fails here in a second, not an hour into
`make bench`."""

import importlib.util
import sys
from pathlib import Path

import pytest

from condgan.config import load_config
from condgan.errors import ConfigError

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _module(name: str):
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


def _variants():
    quality, class_loss, similarity = _module("quality"), _module("class_loss"), _module("similarity")
    screen = _module("selfsup_screen")
    for name, (overrides, _) in screen.CANDIDATES.items():
        yield f"selfsup_screen:{name}", [*screen.BASE, *overrides]
    for name, overrides in quality.LEVERS.items():
        yield f"quality:{name}", overrides
    for name, overrides in class_loss.VARIANTS.items():
        yield f"class_loss:{name}", overrides
    for recipe in similarity.RECIPES:
        base = ["task=similarity", f"similarity.recipe={recipe}", *similarity.RECIPES[recipe]]
        yield f"similarity:{recipe}", base
        yield f"similarity:{recipe}-before", base + similarity.BEFORE[recipe]


@pytest.mark.parametrize("name,overrides", list(_variants()), ids=lambda v: v if isinstance(v, str) else "")
def test_variant_is_a_valid_config(name, overrides):
    config = load_config(None, list(overrides))
    assert config.task in ("cgan", "similarity")


def test_a_mistyped_lever_is_refused():
    with pytest.raises(ConfigError):
        load_config(None, ["train.ema_decy=0.999"])
