"""The README's Python examples run as written (each block marked `<!-- readme-test: NAME -->`)."""

import re
from pathlib import Path

import pytest

README = Path(__file__).parent.parent / "README.md"
BLOCKS = dict(re.findall(r"<!-- readme-test: (\w+) -->\n```python\n(.*?)```", README.read_text(), flags=re.S))


def test_the_readme_marks_its_training_examples():
    assert {"arrays", "dataset"} <= set(BLOCKS)


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_readme_example_runs(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the examples write runs/... where they are run
    scope: dict = {}
    exec(compile(BLOCKS[name], f"README.md ({name})", "exec"), scope)
    import condgan

    gen = scope["gen"]
    run = next(p for p in (tmp_path / "runs").iterdir())
    assert isinstance(gen, type(condgan.load(run))) and (run / "data.npz").is_file()
    if name == "arrays":
        assert tuple(scope["cats"].shape) == (4, 1, 16, 16)
        assert (run / "checkpoints" / "step_00000030.pt").is_file(), "resumed for ten more steps"
