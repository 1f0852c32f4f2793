"""condgan.load("hf://owner/name[@revision]") and `condgan export --push-to-hub`, without a network: the Hub's
cache is filled with huggingface_hub's own functions, and the upload stops at the client call."""

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch

import condgan
from condgan.cli import main
from condgan.config import load_config
from condgan.errors import CheckpointError, UserError
from condgan.training import train

from conftest import tiny_overrides, write_folders

hub = pytest.importorskip("huggingface_hub")
from huggingface_hub import constants, file_download  # noqa: E402

SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub")
    train(load_config(None, tiny_overrides(write_folders(root / "shoes"))), root / "run", quiet=True)
    condgan.load(root / "run").save_pretrained(root / "export")
    return root / "run", root / "export"


@pytest.fixture
def offline_cache(tmp_path, monkeypatch):
    """An empty Hub cache of our own, and huggingface_hub told it is offline (no request leaves the machine)."""
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)

    def put(repo: str, folder, files=("condgan.json", "generator.safetensors", "README.md"), refs=("main",)):
        storage = tmp_path / "hub-cache" / file_download.repo_folder_name(repo_id=repo, repo_type="model")
        snapshot = storage / "snapshots" / SHA
        snapshot.mkdir(parents=True)
        for name in files:
            shutil.copyfile(folder / name, snapshot / name)
        for ref in refs:
            file_download._cache_commit_hash_for_specific_revision(str(storage), ref, SHA)
        return snapshot
    return put


def test_a_hub_model_loads_from_the_cache_like_the_export(exported, offline_cache):
    run, export = exported
    offline_cache("someone/shoes", export, refs=("main", "v1"))
    local = condgan.load(export).sample("sandal", n=2, seed=4)
    for ref in ("hf://someone/shoes", "hf://someone/shoes@v1", f"hf://someone/shoes@{SHA}"):
        model = condgan.load(ref)
        assert type(model).__name__ == "ClassConditional" and torch.equal(model.sample("sandal", n=2, seed=4), local)
    assert main(["sample", "hf://someone/shoes", "--out", str(export.parent / "s.png")]) == 0
    from condgan.cli.common import default_out

    assert default_out("hf://someone/shoes@v1", None) == Path("someone--shoes--v1-eval")  # `condgan eval` writes here


def test_hub_mistakes_are_one_line(exported, offline_cache, tmp_path, capsys):
    _, export = exported
    with pytest.raises(UserError, match="hf://nobody/nothing: not in the local Hub cache, and the Hub could not be reached"):
        condgan.load("hf://nobody/nothing")
    with pytest.raises(UserError, match="is named owner/name"):
        condgan.load("hf://just-a-name")
    with pytest.raises(UserError, match="revision after @"):
        condgan.load("hf://someone/shoes@../x")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "README.md").write_text("# not a model\n")
    offline_cache("someone/notes", tmp_path / "notes", files=("README.md",))
    with pytest.raises(CheckpointError, match="is not a condgan export"):
        condgan.load("hf://someone/notes")
    assert main(["sample", "hf://nobody/nothing", "--out", str(tmp_path / "x.png")]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0


def test_a_hub_model_goes_through_the_closed_registry(exported, offline_cache, tmp_path):
    _, export = exported
    hostile = tmp_path / "hostile"
    shutil.copytree(export, hostile)
    manifest = json.loads((hostile / "condgan.json").read_text())
    manifest["components"]["generator"]["class"] = "os.system"
    (hostile / "condgan.json").write_text(json.dumps(manifest))
    offline_cache("mallory/shoes", hostile)
    with pytest.raises(CheckpointError, match="os.system"):
        condgan.load("hf://mallory/shoes")


def test_without_the_extra_the_hub_is_one_line_naming_it(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # as if not installed
    with pytest.raises(UserError, match=r"pip install 'condgan\[hub\]'"):
        condgan.load("hf://someone/shoes")
    assert main(["export", str(tmp_path / "run"), str(tmp_path / "out"), "--push-to-hub", "me/shoes"]) == 2
    assert "pip install 'condgan[hub]'" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_export_push_to_hub_uploads_the_folder_with_its_card(exported, monkeypatch, tmp_path, capsys):
    run, _ = exported
    calls = []

    class FakeApi:
        def create_repo(self, repo_id, **kwargs):
            calls.append(("create", repo_id, kwargs))

        def upload_folder(self, **kwargs):
            calls.append(("upload", kwargs["repo_id"], kwargs))
            assert (tmp_path / "out" / "README.md").is_file() and (tmp_path / "out" / "condgan.json").is_file()

    monkeypatch.setattr(hub, "HfApi", FakeApi)
    assert main(["export", str(run), str(tmp_path / "out"), "--push-to-hub", "me/shoes", "--private"]) == 0
    assert [c[:2] for c in calls] == [("create", "me/shoes"), ("upload", "me/shoes")]
    assert calls[0][2]["private"] is True and calls[1][2]["folder_path"] == str(tmp_path / "out")
    assert "condgan.load('hf://me/shoes')" in capsys.readouterr().out
    assert 'model = condgan.load("hf://me/shoes")' in (tmp_path / "out" / "README.md").read_text()
    assert main(["export", str(run), str(tmp_path / "bad"), "--push-to-hub", "not a repo"]) == 2
    assert main(["export", str(run), str(tmp_path / "bad"), "--private"]) == 2
    assert not (tmp_path / "bad").exists() and len(calls) == 2
