"""docs/quickstart.ipynb runs from top to bottom, with tiny values in its parameter cell.

The notebook is executed by a real Jupyter kernel (nbclient + ipykernel) running this interpreter, in a
temporary directory, so what a user runs is what is tested; only the `parameters` cell is replaced.
"""

import ast
import json
import sys
from pathlib import Path

import pytest

from conftest import needs_fashion

nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed (pip install '.[dev]')")
nbclient = pytest.importorskip("nbclient", reason="nbclient is not installed (pip install '.[dev]')")
pytest.importorskip("ipykernel", reason="ipykernel is not installed (pip install '.[dev]')")

NOTEBOOK = Path(__file__).parent.parent / "docs" / "quickstart.ipynb"
KERNEL = "condgan-test-python"  # a name no installed kernel has, so the kernel is this interpreter

# A few seconds of everything: 3 steps of a tiny model on the three shoe classes, 10 images per class scored.
TINY = """
DATA = "fashion-mnist"
CLASSES = ["sandal", "sneaker", "ankle-boot"]
MINUTES = 1
STEPS = 3
MODEL = {"g_width": 4, "d_width": 4, "z_dim": 8}
TRAIN = {"batch_size": 8, "log_every": 1, "sample_every": 2, "checkpoint_every": 2, "ema_start": 1}
EVAL_PER_CLASS = 10
OUT = "runs/quickstart"
EXPORT = "exported/quickstart"
"""


def assigned_names(source: str) -> set[str]:
    return {target.id for node in ast.parse(source).body if isinstance(node, ast.Assign)
            for target in node.targets if isinstance(target, ast.Name)}


def parameter_cell(notebook):
    cells = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(cells) == 1, "the notebook has exactly one cell tagged 'parameters'"
    return cells[0]


def install_kernel(folder: Path, monkeypatch) -> None:
    """A kernelspec for this interpreter, found before any other (JUPYTER_PATH comes first); the runtime and
    IPython folders also go to the temporary folder, so nothing is written to the home directory."""
    spec = folder / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "condgan test", "language": "python",
        "env": {"OMP_NUM_THREADS": "1"},  # tiny models: one thread is as fast, and leaves a core free
    }))
    monkeypatch.setenv("JUPYTER_PATH", str(folder))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(folder / "runtime"))
    monkeypatch.setenv("IPYTHONDIR", str(folder / "ipython"))


def test_the_parameter_cell_sets_what_the_test_replaces():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert assigned_names(parameter_cell(notebook).source) == assigned_names(TINY)
    assert not any(cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), \
        "the notebook is committed without outputs"


@needs_fashion
def test_quickstart_notebook_runs(tmp_path, monkeypatch):
    install_kernel(tmp_path / "jupyter", monkeypatch)
    work = tmp_path / "work"
    work.mkdir()
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    parameter_cell(notebook).source = TINY.strip()
    client = nbclient.NotebookClient(notebook, kernel_name=KERNEL, timeout=120,
                                     resources={"metadata": {"path": str(work)}})
    client.execute()  # raises CellExecutionError, with the cell and its traceback, if any cell fails

    export = work / "exported" / "quickstart"
    assert (export / "condgan.json").is_file() and (export / "generator.safetensors").is_file()
    assert (work / "runs" / "quickstart" / "eval" / "report.json").is_file()
    images = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
              if "image/png" in output.get("data", {})]
    assert len(images) >= 6, "grids, latest.png, loss.png, the confusion matrix and the export's samples are shown"
    import condgan

    assert condgan.load(export).class_names == ["sandal", "sneaker", "ankle-boot"]
