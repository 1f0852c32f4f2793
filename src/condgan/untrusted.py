"""The boundary where untrusted input is checked before anything uses it.

Config files, checkpoints, exports, NPZ files, images and CLI flags may come
from a careless hand or a hostile one. Everything here turns "this could do
anything" into either a value that is safe to use or one `UserError` naming
the file and the problem: sizes are checked before allocating, text is made
printable before it reaches a terminal or a picture, and paths read from a
file must stay inside that file's folder.
"""

from __future__ import annotations

import math
import re
import reprlib
import unicodedata
from pathlib import Path

import yaml

from .errors import ConfigError, DataError, UserError

MAX_CONFIG_BYTES = 1_000_000
MAX_YAML_ALIASES = 20      # configs need none; 20 expand to at most ~1,600 items, a "billion laughs" needs more
MAX_TEXT_VALUE = 4096      # longest string a config value may be
MAX_SEED = 2 ** 63 - 1
MAX_PIXELS = 64_000_000    # per image, for anything we are handed to decode or resize
_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d{1,2})?|mps)$")


# ----- text -----------------------------------------------------------------------------------------------
def printable(text, limit: int = 200) -> str:
    """`text` safe for a terminal, a log line, a picture or JSON: control characters (escape codes,
    newlines) are shown escaped, and anything past `limit` characters is cut with a note."""
    text = str(text)
    cut = len(text) - limit
    if cut > 0:
        text = text[:limit]
    out = "".join(ch if ch == " " or unicodedata.category(ch)[0] != "C" else ch.encode("unicode_escape").decode("ascii")
                  for ch in text)
    return out + (f"… ({cut} more characters)" if cut > 0 else "")


_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxdict, _SHORT.maxstring, _SHORT.maxother = 2, 4, 4, 60, 60


def shown(value, limit: int = 60) -> str:
    """A value quoted for an error message, never longer than about `limit` characters (and never built whole:
    the repr of a nested structure from a hostile file could be gigabytes)."""
    text = printable(_SHORT.repr(value), limit)
    return text


# ----- files ----------------------------------------------------------------------------------------------
def read_text(path: str | Path, what: str, limit: int = MAX_CONFIG_BYTES) -> str:
    """A small UTF-8 text file, or a UserError saying why it is not one."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{what} {path} does not exist")
    if not path.is_file():
        raise UserError(f"{what} {path} is not a file")
    size = path.stat().st_size
    if size > limit:
        raise UserError(f"{what} {path} is larger than {limit:,} bytes ({size:,}); is it the right file?")
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"{what} {path} is not UTF-8 text (byte {e.start}); save it as UTF-8") from None


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (the last would silently win) and alias floods."""

    def __init__(self, stream):
        super().__init__(stream)
        self._aliases = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_YAML_ALIASES:
                raise yaml.YAMLError(f"more than {MAX_YAML_ALIASES} YAML aliases (*name); a config needs none")
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key (a list as a key): let the base class report it
                continue
            if duplicate:
                where = self._path_of(node)
                raise yaml.YAMLError(f"{where + '.' if where else ''}{printable(key, 60)} appears twice "
                                     f"(line {key_node.start_mark.line + 1}); remove one")
        return super().construct_mapping(node, deep)

    def _path_of(self, node) -> str:
        """Dotted path of a mapping node inside the document (for 'train.lr_g appears twice')."""
        root = self._root
        if root is None or root is node:
            return ""
        for key_node, value_node in getattr(root, "value", []):
            if value_node is node and isinstance(key_node, yaml.ScalarNode):
                return key_node.value
        return ""

    def get_single_node(self):
        self._root = None
        node = super().get_single_node()
        return node

    def compose_document(self):
        node = super().compose_document()
        self._root = node
        return node


def load_yaml(text: str, source: str):
    """Parse YAML from an untrusted file: no duplicate keys, few aliases; errors name the file."""
    try:
        loader = _StrictLoader(text)
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as e:
        first = str(e).strip().splitlines()
        raise ConfigError(f"{source} is not valid YAML: {printable(' '.join(first[:2]) if first else e, 200)}") from None
    except RecursionError:
        raise ConfigError(f"{source} is not valid YAML: nested too deeply") from None


def inside(folder: Path, name) -> Path:
    """`folder/name` for a file name read from a file in `folder`; a name that leads elsewhere is refused."""
    if not isinstance(name, str) or not name or Path(name).is_absolute() or Path(name).name != name or name in (".", ".."):
        raise UserError(f"{folder}: file name {shown(name)} must be a plain name inside the export folder")
    return Path(folder) / name


PATHS_OUTSIDE = ("warn", "error")  # data.paths_outside: what a CSV row naming a file outside the CSV's folder gets


def paths_outside(csv_file: Path, rows, policy: str | None = "warn") -> None:
    """Check the file paths a CSV names, given as (line number, path text) pairs: each is meant to be inside
    the CSV's folder. One that leads elsewhere (`../x.png`, an absolute path) reads whatever the CSV's author
    chose: a warning counts such rows and names the first, or with policy 'error' (data.paths_outside) they
    are refused. The check is on the path as written (symbolic links inside the folder are followed as usual)."""
    import os
    import warnings

    folder = os.path.normpath(os.path.abspath(Path(csv_file).parent))
    outside = [(line, text) for line, text in rows
               if os.path.commonpath([folder, os.path.normpath(os.path.join(folder, os.path.expanduser(text)))]) != folder]
    if not outside:
        return
    (line, text), n = outside[0], len({line for line, _ in outside})
    if policy == "error":
        raise DataError(f"{csv_file}, line {line}: {shown(text, 120)} is outside the CSV's folder {folder} ({n} row(s) "
                        f"name such files); data.paths_outside=error refuses them (set it to warn to read them)")
    warnings.warn(f"{csv_file}: {n} row(s) name files outside its folder {folder}, the first on line {line}: "
                  f"{shown(text, 120)} (data.paths_outside=error refuses such rows)", stacklevel=3)


# ----- numbers and choices --------------------------------------------------------------------------------
def integer(value, name: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise UserError(f"{name} must be an integer between {low:,} and {high:,}, not {shown(value)}")
    return value


def positive(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise UserError(f"{name} must be a positive finite number, not {shown(value)}")
    return value


def flag_type(parse, ok, what: str):
    """An argparse `type=` that parses a flag's text and checks its range, so a bad value is a usage error
    (`--steps must be a positive integer, not '0'`) before any work starts."""
    import argparse

    def convert(text: str):
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, not {printable(text, 40)!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must be {what}, not {printable(text, 40)}")
        return value

    convert.__name__ = what
    return convert


def seed(value, name: str = "seed") -> int:
    return integer(value, name, 0, MAX_SEED)


def device(name, flag: str = "device"):
    """A torch.device for `name`, checked: a typo or a missing GPU is a clear error, not a crash later.
    The one resolver of every --device and train.device: auto is cuda, then mps, then cpu."""
    import torch

    if isinstance(name, torch.device):
        name = str(name)
    if not isinstance(name, str) or not _DEVICE.match(name):
        raise UserError(f"{flag} must be auto, cpu, cuda, cuda:N or mps, not {shown(name)}")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if torch.backends.mps.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(f"{flag} {name}: no CUDA GPU is available here; use cpu")
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise UserError(f"{flag} {name}: this machine has {torch.cuda.device_count()} GPU(s)")
    if name == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"{flag} mps: Apple's MPS is not available here; use cpu")
    return torch.device(name)


# The packages of pyproject's optional extras, by import name: (extra, package name on PyPI, what needs it)
EXTRAS = {"pytorch_metric_learning": ("similarity", "pytorch-metric-learning", "the similarity task")}


def optional_module(name: str):
    """Import `name` from an optional extra; when its package is not installed, one line names the pip install."""
    import importlib

    root = name.split(".")[0]
    try:
        importlib.import_module(root)
    except ImportError:
        extra, package, purpose = EXTRAS[root]
        raise UserError(f"{purpose} needs the optional extra {package}: pip install 'condgan[{extra}]'") from None
    return importlib.import_module(name)


def finite_weights(state: dict, source: str) -> None:
    """Refuse weights with NaN/Inf: they would sample black or noise images without a word."""
    import torch

    for key, value in state.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not torch.isfinite(value).all():
            raise UserError(f"{source}: weight {printable(key, 80)} contains NaN or Inf; the model is broken "
                            f"(a diverged run? use an earlier checkpoint)")


def weights_misfit(net, weights: dict, limit: int = 3) -> str | None:
    """Why `weights` cannot be loaded into `net`, in one line naming the first few keys (wrong shapes first, then
    missing and extra tensors), or None when they fit. torch's own message spreads every key over many lines."""
    import torch

    own = net.state_dict()
    wrong, missing = [], []
    for key, expected in own.items():
        if key not in weights:
            missing.append(f"{printable(key, 60)} missing")
            continue
        found = weights[key]
        if not isinstance(found, torch.Tensor):
            wrong.append(f"{printable(key, 60)} is {type(found).__name__}, not a tensor")
        elif found.shape != expected.shape:
            wrong.append(f"{printable(key, 60)}: expected {tuple(expected.shape)}, found {tuple(found.shape)}")
    extra = [f"{printable(key, 60)} unexpected" for key in weights if key not in own]
    problems = wrong + missing + extra
    if not problems:
        return None
    more = len(problems) - limit
    return "; ".join(problems[:limit]) + (f" (and {more} more)" if more > 0 else "")
