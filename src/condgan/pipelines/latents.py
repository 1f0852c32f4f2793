"""A generator's latent space: truncated draws (the truncation trick), and paths through it (the seed-to-seed
strip of the serve page and the eval's traversal)."""

from __future__ import annotations

import math

import torch

from ..errors import UserError
from ..untrusted import shown

MAX_STEPS = 1000  # images along one path
# Below this, nearly every entry is redrawn many times (0.05 keeps 4% of draws) and every image is close to the
# one of z = 0; 1.0 to 2.0 is the useful range.
MIN_TRUNCATION = 0.05
TRUNCATION_RANGE = f"a number of at least {MIN_TRUNCATION} (typically 1.0 to 2.0)"


def truncation_ok(value) -> bool:
    """Whether `value` is a truncation threshold: a finite number of at least MIN_TRUNCATION (None: off is
    checked by the caller)."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and value >= MIN_TRUNCATION)


def check_truncation(value, name: str = "truncation") -> float | None:
    """`value` if it is None (no truncation) or a threshold (truncation_ok), else a UserError naming `name`."""
    if value is not None and not truncation_ok(value):
        raise UserError(f"{name} must be {TRUNCATION_RANGE}, or None to turn it off; not {shown(value)}")
    return value


def truncation_note(truncation: float | None) -> str:
    """What a message or picture title adds when its latents were truncated ("" when not)."""
    return "" if truncation is None else f" (latents truncated at ±{truncation:g})"


def truncate(z: torch.Tensor, generator: torch.Generator, truncation: float | None) -> torch.Tensor:
    """The truncation trick: each entry of the N(0, 1) latents `z` with |z| > truncation is drawn again from
    `generator` (the one that drew z, so a seed still gives the same latents) until it is within the threshold.
    Latents near the centre give more typical, less varied images. truncation None: z itself, untouched."""
    if check_truncation(truncation) is None:
        return z
    z = z.clone()
    outside = z.abs() > truncation
    while outside.any():
        z[outside] = torch.randn(int(outside.sum()), generator=generator, dtype=z.dtype)
        outside = z.abs() > truncation
    return z


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation, row-wise, between z0[i] and z1[i] at t[i] in [0, 1]; t = 0 and 1 give z0 and z1 exactly.

    Why not a straight line: a Gaussian latent of dimension d lies close to the sphere of radius sqrt(d), and
    the generator only ever saw such latents in training. The midpoint of two of them, almost orthogonal in
    high dimension, has a norm near sqrt(d / 2): off that shell, where images come out faded and alike. The
    great circle between them keeps every step at the typical radius."""
    a, b = z0 / z0.norm(dim=-1, keepdim=True), z1 / z1.norm(dim=-1, keepdim=True)
    omega = (a * b).sum(-1, keepdim=True).clamp(-1, 1).acos()
    so = omega.sin()
    t = t[:, None]
    near = so.abs() < 1e-6  # parallel vectors (the same seed twice): plain linear interpolation
    w0 = torch.where(near, 1 - t, ((1 - t) * omega).sin() / so.where(~near, torch.ones_like(so)))
    w1 = torch.where(near, t, (t * omega).sin() / so.where(~near, torch.ones_like(so)))
    return w0 * z0 + w1 * z1


def positions(steps: int) -> torch.Tensor:
    """Where the `steps` images of a path sit between its ends: evenly spaced, 0 and 1 included."""
    if not isinstance(steps, int) or isinstance(steps, bool) or not 2 <= steps <= MAX_STEPS:
        raise UserError(f"steps must be an integer between 2 and {MAX_STEPS:,}, got {steps!r}")
    return torch.linspace(0, 1, steps)


def seed_path(z_a: torch.Tensor, z_b: torch.Tensor, steps: int) -> torch.Tensor:
    """(steps, D) latents from z_a to z_b along the great circle (slerp): the first is z_a, the last z_b."""
    t = positions(steps)
    return slerp(z_a.expand(steps, -1), z_b.expand(steps, -1), t)
