"""Where a run computes (train.device, cuda:N under torchrun) and in what precision (train.precision)."""

from __future__ import annotations

import contextlib

import torch

from .. import untrusted
from ..errors import ConfigError, UserError


def resolve_device(name: str) -> torch.device:
    try:
        return untrusted.device(name, "train.device")
    except UserError as e:
        raise ConfigError(str(e)) from None


def resolve_precision(name: str, device: torch.device) -> str:
    """train.precision for this device. 'auto' is bf16 where the hardware computes it natively: on a CPU with
    AVX512-BF16 it trained the default model 1.2-1.7x faster with the same FID at equal steps (two seeds,
    docs/benchmarks.md); elsewhere (emulated bf16 is slower) fp32."""
    if name == "fp16" and device.type != "cuda":
        raise ConfigError("train.precision=fp16 needs a GPU (fp16 on CPU is slower than fp32); use bf16 or fp32")
    if name == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError(f"this GPU ({torch.cuda.get_device_name(device)}) has no bf16; use train.precision=fp16 or fp32")
    if name != "auto":
        return name
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    native = [getattr(torch.cpu, f, lambda: False) for f in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return "bf16" if device.type == "cpu" and any(f() for f in native) else "fp32"


def autocast_for(precision: str, device_type: str):
    """A resolved train.precision as a factory of the context a step's forward passes run in: autocast to bf16
    or fp16, or (fp32) no context at all, so fp32 arithmetic is exactly that of a step without it."""
    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    return (lambda: torch.autocast(device_type, dtype=dtype)) if dtype else contextlib.nullcontext


def grad_scaler(precision: str, device_type: str) -> torch.amp.GradScaler:
    """The loss scaler of one optimiser: active for fp16 only (its gradients can underflow), a pass-through
    otherwise (scale() returns the loss, step() just steps)."""
    return torch.amp.GradScaler(device_type, enabled=precision == "fp16")
