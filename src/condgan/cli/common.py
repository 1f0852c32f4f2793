"""What every command shares: one-line errors, checked flag types, and "does this flag apply to this model"."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from .. import registry
from ..errors import UserError
from ..untrusted import MAX_SEED, device, flag_type, printable

DEVICE_CHOICES = "auto (default): cuda, then mps, then cpu; or cpu, cuda, cuda:N, mps"


class Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one `condgan: error:` line like every other mistake."""

    def error(self, message):
        message = message.replace("argument ", "", 1) if message.startswith("argument ") else message
        message = message.replace(": must be", " must be", 1)
        self.exit(2, f"condgan: error: {printable(message, 300)} (see `{self.prog} --help`)\n")


positive_int = flag_type(int, lambda v: v >= 1, "a positive integer")
positive_float = flag_type(float, lambda v: math.isfinite(v) and v > 0, "a positive finite number")
seed_int = flag_type(int, lambda v: 0 <= v <= MAX_SEED, "an integer between 0 and 2**63-1")


def add_device_argument(parser: argparse.ArgumentParser, what: str = "the model runs") -> None:
    parser.add_argument("--device", default="auto", help=f"where {what}: {DEVICE_CHOICES}")


def load_on_device(args: argparse.Namespace, say: bool = True):
    """args.run's model on args.device (the one resolver of every --device and train.device); say=False: the
    command says the device itself, after checking its inputs."""
    from ..api import load

    model = load(args.run, device=device(args.device, "--device"))
    if say:
        say_device(args, model.device)
    return model


def say_device(args: argparse.Namespace, chosen) -> None:
    """One stderr line, once the model is loaded (a mistake before is the only line), so a user knows where
    the work runs; --quiet leaves it out."""
    if not getattr(args, "quiet", False):
        print(f"condgan: device {chosen}", file=sys.stderr)


def add_task_arguments(command: str, parser: argparse.ArgumentParser) -> None:
    """Each registered task's own flags for `condgan COMMAND`; a flag two tasks share is added once."""
    for task in registry.tasks():
        task.add_arguments(command, _OnceParser(parser))


class _OnceParser:
    """Forwards add_argument to a parser, skipping option strings it already has."""

    def __init__(self, parser: argparse.ArgumentParser):
        self._parser = parser

    def add_argument(self, *names, **kwargs):
        if not any(n in self._parser._option_string_actions for n in names):
            self._parser.add_argument(*names, **kwargs)


def foreign_flag(command: str, args: argparse.Namespace, task=None) -> tuple[str, object] | None:
    """The first task flag given that `task` does not take (any task's, for task None), and the task it is for."""
    mine = set(task.flags.get(command, ())) if task is not None else set()
    for other in registry.tasks():
        for dest in other.flags.get(command, ()):
            if dest not in mine and getattr(args, dest, None) is not None:
                return "--" + dest.replace("_", "-"), other
    return None


def check_flags_apply(command: str, args: argparse.Namespace, task) -> None:
    """Refuse a task's own flag given for a model of another task, naming the task it is for."""
    found = foreign_flag(command, args, task)
    if found:
        flag, other = found
        raise UserError(f"{flag} does not apply to {task.noun()}; {flag} is for {other.noun()}")


def check_writable(out: Path) -> None:
    """Fail before sampling, not after: try to create a file where the output goes."""
    import tempfile

    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise UserError(f"output folder {parent} does not exist")
    try:
        with tempfile.NamedTemporaryFile(dir=parent, prefix=".condgan-write-test-"):
            pass
    except OSError as e:
        raise UserError(f"cannot write {out}: folder {parent} is read-only or not writable ({e.strerror})") from None


def default_out(run: str, out: str | None) -> Path:
    """Where a command writes about a run unless told: RUN/eval (beside a checkpoint file: its folder's; a Hub
    model hf://owner/name: owner--name-eval here)."""
    from ..training.hub import PREFIX, is_hub

    if out:
        return Path(out)
    if is_hub(run):
        return Path(run[len(PREFIX):].replace("/", "--").replace("@", "--") + "-eval")
    run = Path(run)
    return (run if run.is_dir() else run.parent) / "eval"
