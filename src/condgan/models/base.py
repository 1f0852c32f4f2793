"""Networks that remember how they were built.

Every condgan network records the arguments its constructor was called with
(`net.arguments`). Checkpoints and exports store those next to the weights,
so a model is rebuilt from what it *is* rather than from the training config
schema of the day: renaming a config key can never orphan an old run.
"""

from __future__ import annotations

import functools
import inspect

from torch import nn


class Network(nn.Module):
    """Base class: subclasses get `self.arguments`, the bound constructor arguments (JSON-able values)."""

    arguments: dict

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is None:
            return
        signature = inspect.signature(init)

        @functools.wraps(init)
        def recording_init(self, *args, **kw):
            bound = signature.bind(self, *args, **kw)
            bound.apply_defaults()
            init(self, *args, **kw)
            self.arguments = {k: v for k, v in bound.arguments.items() if k != "self"}

        cls.__init__ = recording_init

    def describe(self) -> dict:
        """{'class': ..., 'arguments': ...}: enough for `models.rebuild` to make this network again."""
        return {"class": type(self).__name__, "arguments": dict(self.arguments)}
