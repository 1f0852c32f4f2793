"""Careless inputs (issue 26, part a): each one gets a clear answer instead of a crash, a silent surprise or noise.

Image sizes the networks cannot take, an edited config.yaml on resume, empty and comma-holding --label values,
--quiet and the data loaders' bars, the serve Host check, read-only arrays, and CSV rows that lead outside their
folder or to a non-image."""

import json
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from condgan.cli import build_parser, main
from condgan.conditions import ImageField
from condgan.config import load_config
from condgan.data import folders
from condgan.data.twolabel import load_two_label
from condgan.errors import ConfigError, DataError
from condgan.pipelines import as_images
from condgan.tasks.similarity import read_csv
from condgan.training import checkpoint as ckpt
from condgan.training import train
from conftest import class_pattern, tiny_overrides, write_folders, write_idx

COMMA = "red, dark"


def error_line(capsys) -> str:
    """The one `condgan: error:` line of a command that failed."""
    errors = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("condgan: error:")]
    assert len(errors) == 1, errors
    return errors[0]


@pytest.fixture(scope="module")
def comma_run(tmp_path_factory):
    """A tiny cgan on class folders 'blue' and 'red, dark' (a comma in a folder name is allowed)."""
    root = tmp_path_factory.mktemp("comma")
    data = write_folders(root / "data", classes=("blue", COMMA), per_class=8, size=16)
    train(load_config(None, tiny_overrides(data, steps=2)), root / "run", quiet=True)
    return root / "run"


def write_manifest(root: Path, rows: int = 24, size: int = 16, label_b=("blue", COMMA)) -> Path:
    """root/data.csv: image, intermediate, label_a (bar/post), label_b; a comma-holding label B is quoted."""
    rng = np.random.default_rng(0)
    (root / "img").mkdir(parents=True, exist_ok=True)
    lines = ["image,intermediate,label_a,label_b"]
    for i in range(rows):
        grey = class_pattern(i % 2, size, rng)
        Image.fromarray(np.stack([grey] * 3, -1)).save(root / "img" / f"{i}.png")
        Image.fromarray(np.where(grey > 128, 255, 0).astype(np.uint8)).save(root / "img" / f"{i}m.png")
        lines.append(f'img/{i}.png,img/{i}m.png,{("bar", "post")[i % 2]},"{label_b[(i // 2) % 2]}"')
    (root / "data.csv").write_text("\n".join(lines) + "\n")
    return root / "data.csv"


# ----- 1. image sizes the networks cannot be built at ------------------------------------------------------
@pytest.mark.parametrize("flags", [["--arch", "resnet"], ["--arch", "dcgan"], ["--task", "two-stage"]])
def test_an_odd_image_size_is_a_config_error_before_any_data_is_read(flags, tmp_path, capsys):
    """The data folder does not even exist: the size is refused first, by name, with the sizes allowed."""
    code = main(["train", "--data", str(tmp_path / "not-read.csv"), "--set", "data.image_size=9", "--steps", "1",
                 "--quiet", "--out", str(tmp_path / "run"), *flags])
    line = error_line(capsys)
    assert code == 2 and "data.image_size 9" in line and "even number of at least 8" in line, line
    assert "unexpected" not in line and not (tmp_path / "run").exists()


def test_every_task_checks_the_size_in_its_config():
    for task in ("cgan", "two-stage", "exemplar"):
        with pytest.raises(ConfigError, match="data.image_size 9 does not fit model.arch resnet"):
            load_config(None, [f"task={task}", "data.image_size=9"])
    for task, arch in (("translate", "unet"), ("similarity", "embedder"), ("cgan", "mlp")):  # these take any size from 8
        assert load_config(None, [f"task={task}", f"model.arch={arch}", "data.image_size=9"]).data.image_size == 9


def test_the_datas_own_odd_size_is_a_config_error_before_networks_are_built(tmp_path):
    data = write_idx(tmp_path / "idx9", size=9)
    with pytest.raises(ConfigError, match=r"the images are 9 px \(data.image_size unset.*set data.image_size"):
        train(load_config(None, tiny_overrides(data, **{"data.image_size": ""})), tmp_path / "run", quiet=True)


# ----- 5. an edited RUN/config.yaml on resume --------------------------------------------------------------
def test_resume_refuses_an_edited_recipe_and_records_what_is_in_use(shoes_dir, tmp_path, capsys):
    run = tmp_path / "run"
    train(load_config(None, tiny_overrides(shoes_dir, steps=2)), run, quiet=True)
    original = (run / "config.yaml").read_text()
    assert "lr_g: 0.0004" in original
    (run / "config.yaml").write_text(original.replace("lr_g: 0.0004", "lr_g: 0.001"))
    assert main(["train", "--resume", str(run), "--steps", "1", "--quiet"]) == 2
    line = error_line(capsys)
    assert "train.lr_g to 0.001" in line and "trained with 0.0004" in line and f"--config {run / 'config.yaml'}" in line
    assert [p.name for p in ckpt.list_checkpoints(run / "checkpoints")][-1] == "step_00000002.pt", "nothing trained"
    # a runtime key may be edited there: it is used, and config.yaml records what was used
    (run / "config.yaml").write_text(original.replace("log_every: 1", "log_every: 3"))
    assert main(["train", "--resume", str(run), "--steps", "1", "--quiet"]) == 0
    recorded = yaml.safe_load((run / "config.yaml").read_text())["train"]
    state = ckpt.safe_load(run / "checkpoints" / "step_00000003.pt")
    assert recorded["log_every"] == 3 and recorded["lr_g"] == state["config"]["train"]["lr_g"] == 4e-4
    assert state["state"]["opt_G"]["param_groups"][0]["lr"] == 4e-4


# ----- 6 and 13. empty labels, and class names with a comma ------------------------------------------------
@pytest.mark.parametrize("value", ["", " , "])
def test_an_empty_label_is_refused_with_the_known_classes(value, comma_run, tmp_path, capsys):
    out = tmp_path / "x.png"
    assert main(["sample", str(comma_run), "--label", value, "--out", str(out)]) == 2
    line = error_line(capsys)
    assert "--label" in line and "names no class" in line and "known classes: blue, red, dark" in line, line
    assert not out.exists()


def test_a_class_name_with_a_comma_is_chosen_quoted_or_by_index(comma_run, tmp_path, capsys):
    out = tmp_path / "x.png"
    assert main(["sample", str(comma_run), "--label", f'"{COMMA}"', "--n", "2", "--out", str(out)]) == 0
    assert f"each of {COMMA} to" in capsys.readouterr().out and out.is_file()
    assert main(["sample", str(comma_run), "--label", f'blue, "{COMMA}"', "--n", "2", "--out", str(out)]) == 0
    assert f"each of blue, {COMMA} to" in capsys.readouterr().out
    assert main(["sample", str(comma_run), "--label", "1", "--n", "2", "--out", str(out)]) == 0
    assert f"each of {COMMA} to" in capsys.readouterr().out
    assert main(["sample", str(comma_run), "--label", COMMA, "--out", str(out)]) == 2
    line = error_line(capsys)
    assert "unknown class 'red'" in line and "double quotes" in line and "index" in line, line
    with pytest.raises(SystemExit):
        main(["sample", "--help"])
    assert "double quotes" in " ".join(capsys.readouterr().out.split())


@pytest.fixture(scope="module")
def two_stage_run(tmp_path_factory):
    """A two-stage pipeline (1 step per stage) whose label B values are 'blue' and 'red, dark'."""
    root = tmp_path_factory.mktemp("two_stage_comma")
    csv_file = write_manifest(root / "data")
    tiny = {"task": "two-stage", "data.name": str(csv_file), "model.g_width": 4, "model.d_width": 4, "model.z_dim": 8,
            "stages.g2_width": 4, "stages.d2_width": 4, "stages.z2_dim": 2, "train.batch_size": 8, "train.steps": 1,
            "train.ema_start": 1}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CONDGAN_CACHE", str(root / "cache"))
        train(load_config(None, [f"{k}={v}" for k, v in tiny.items()]), root / "run", quiet=True)
    return root / "run"


def test_two_stage_label_flags_refuse_empty_and_take_quoted_names(two_stage_run, tmp_path, capsys):
    out = tmp_path / "grid.png"
    for flag in ("--label-a", "--label-b"):
        assert main(["sample", str(two_stage_run), flag, "", "--out", str(out)]) == 2
        line = error_line(capsys)
        assert f"{flag} '' names no class" in line and "known classes" in line, line
    assert not out.exists()
    assert main(["sample", str(two_stage_run), "--label-b", f'"{COMMA}"', "--label-a", "post", "--out", str(out)]) == 0
    assert out.is_file()
    assert main(["sample", str(two_stage_run), "--label-b", COMMA, "--out", str(out)]) == 2
    line = error_line(capsys)
    assert "label B: unknown class 'red'" in line and "double quotes" in line, line


# ----- 16. --quiet silences every progress bar -------------------------------------------------------------
def test_quiet_hides_the_data_loaders_decoding_bar(shoes_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(folders, "PROGRESS_FROM", 1)  # a bar even for the tiny folder
    monkeypatch.setenv("CONDGAN_CACHE", str(tmp_path / "cache"))
    args = ["--set", *tiny_overrides(shoes_dir, steps=1)]
    assert main(["train", *args, "--out", str(tmp_path / "loud")]) == 0
    assert "decoding train images" in capsys.readouterr().err, "without --quiet the bar is shown (the test can fail)"
    assert main(["train", *args, "--out", str(tmp_path / "quiet"), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "decoding" not in err and "training cgan" not in err, err
    evaluator = ["evaluator", "train", "--data", str(shoes_dir), "--image-size", "16", "--epochs", "1", "--quiet"]
    assert main(evaluator) == 0
    err = capsys.readouterr().err
    assert "decoding" not in err and "evaluator epoch" not in err, err


# ----- 8. serve answers only the Host names it knows -------------------------------------------------------
def test_serve_refuses_a_host_it_does_not_know(comma_run):
    from condgan.serve.app import load_models, make_server
    from serve_helpers import request

    server = make_server(load_models([str(comma_run)], say=lambda *_: None), "127.0.0.1", 0, quiet=True,
                         allow_hosts=["models.example.com"])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        for host in ("evil.example.com", f"evil.example.com:{port}", "127.0.0.1.evil.example.com", "localhost.evil"):
            status, headers, body = request(server, "GET", "/api/models", headers={"Host": host})
            assert status == 403 and headers["Content-Type"] == "application/json", host
            assert "DNS rebinding" in json.loads(body)["error"] and "--allow-host" in json.loads(body)["error"]
        status, _, body = request(server, "POST", "/api/generate", {"label": "blue", "n": 1}, headers={"Host": "evil.example.com"})
        assert status == 403 and not body.startswith(b"\x89PNG")
        for host in (f"127.0.0.1:{port}", "localhost", f"LOCALHOST:{port}", "[::1]:80", "models.example.com:443"):
            assert request(server, "GET", "/healthz", headers={"Host": host})[0] == 200, host
        assert request(server, "POST", "/api/generate", {"label": "blue", "n": 1}, headers={"Host": f"localhost:{port}"})[0] == 200
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    args = build_parser().parse_args(["serve", "run", "--allow-host", "a.example", "--allow-host", "b.example"])
    assert args.allow_host == ["a.example", "b.example"]


def test_serve_refuses_a_malformed_allow_host(tmp_path, capsys):
    assert main(["serve", str(tmp_path / "never-loaded"), "--allow-host", "http://x.example/"]) == 2
    assert "--allow-host takes a host name" in error_line(capsys)


# ----- 17. read-only arrays ---------------------------------------------------------------------------------
def test_read_only_arrays_are_taken_without_a_warning(tmp_path):
    image = np.arange(16 * 16, dtype=np.uint8).reshape(16, 16)
    frozen = np.frombuffer(image.tobytes(), dtype=np.uint8).reshape(16, 16)
    np.save(tmp_path / "x.npy", image)
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    assert not frozen.flags.writeable and not mapped.flags.writeable
    field = ImageField(1, 16, 16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch's "The given NumPy array is not writable" would fail here
        for array in (frozen, mapped):
            assert torch.equal(as_images(array, field), as_images(image.copy(), field))


# ----- 9 and 15. CSV rows that lead outside their folder, or to a non-image --------------------------------
def outside_manifest(tmp_path: Path) -> Path:
    """A manifest whose rows 3 and 5 read their image from ../outside/ (2 rows of 24)."""
    csv_file = write_manifest(tmp_path / "data")
    (tmp_path / "outside").mkdir()
    lines = csv_file.read_text().splitlines()
    for n in (3, 5):  # lines of the file (the header is line 1)
        name = lines[n - 1].split(",")[0]
        Image.open(tmp_path / "data" / name).save(tmp_path / "outside" / Path(name).name)
        lines[n - 1] = lines[n - 1].replace(name, f"../outside/{Path(name).name}", 1)
    csv_file.write_text("\n".join(lines) + "\n")
    return csv_file


def test_manifest_rows_outside_its_folder_warn_once_or_are_refused(tmp_path):
    csv_file = outside_manifest(tmp_path)
    with pytest.warns(UserWarning) as caught:
        load_two_label(str(csv_file), "all")
    outside = [str(w.message) for w in caught if "outside its folder" in str(w.message)]
    assert len(outside) == 1 and "2 row(s)" in outside[0] and "line 3" in outside[0] and "../outside/1.png" in outside[0]
    with pytest.raises(DataError, match=r"data.csv, line 3: '../outside/1.png' is outside the CSV's folder .*2 row"):
        load_two_label(str(csv_file), "all", paths_outside="error")
    from condgan.tasks.two_stage.stages import load_fields

    config = load_config(None, ["task=two-stage", f"data.name={csv_file}", "data.paths_outside=error"])
    with pytest.raises(DataError, match="data.paths_outside=error refuses them"):
        load_fields(config, "train", "stage1")
    with pytest.raises(ConfigError, match="data.paths_outside must be warn or error, not 'maybe'"):
        load_config(None, ["data.paths_outside=maybe"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_two_label(str(write_manifest(tmp_path / "clean")), "all")  # rows inside: no warning


def test_similarity_pairs_outside_the_csvs_folder_warn_or_are_refused(tmp_path):
    (tmp_path / "csv").mkdir()
    (tmp_path / "img").mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(class_pattern(i % 2, 12, rng)).save(tmp_path / "img" / f"{i}.png")
    csv_file = tmp_path / "csv" / "pairs.csv"
    csv_file.write_text("image_a,image_b,similar\n\n../img/0.png,../img/1.png,0\n../img/2.png,../img/0.png,1\n")
    with pytest.warns(UserWarning, match=r"2 row\(s\) name files outside its folder .* line 3: '../img/0.png'"):
        read_csv(csv_file, "all", 12, 1)
    with pytest.raises(DataError, match=r"pairs.csv, line 3: '../img/0.png' is outside"):
        read_csv(csv_file, "all", 12, 1, paths_outside="error")


def test_a_manifest_row_naming_a_non_image_is_named_by_its_row(tmp_path):
    csv_file = write_manifest(tmp_path / "data")
    (tmp_path / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    lines = csv_file.read_text().splitlines()
    lines[3] = lines[3].replace("img/2m.png", "../passwd")  # line 4 of the file
    csv_file.write_text("\n".join(lines) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (it is outside the folder too: that warning is tested above)
        with pytest.raises(DataError, match=r"data.csv, row 4: .*passwd: not a readable image"):
            load_two_label(str(csv_file), "all")
