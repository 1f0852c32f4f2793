"""The two-stage task's config sections: `stages` (the stage runs, G2/D2) and `joint` (the fine-tuning)."""

from __future__ import annotations

from dataclasses import dataclass, field

@dataclass
class StagesConfig:
    """Task two-stage: G1(label A) -> intermediate, G2(intermediate, label B) -> image (docs/two-stage.md).
    model.* and train.* describe stage 1 (G1, D1) and the shared optimiser settings; G2/D2 are set here."""
    stage: str = "all"                # what a run trains: all (stage1, stage2, joint in turn) | stage1 | stage2 | joint
    fractions: list[float] = field(default_factory=lambda: [0.45, 0.25, 0.3])  # shares of a --budget-minutes
                                      # for stage1, stage2 and joint when stage is all
    g2_width: int = 32                # G2 (U-Net) channels at full resolution
    d2_width: int = 32                # D2 (patch D on image + intermediate) channels at full resolution
    z2_dim: int = 8                   # G2's noise, at its bottleneck
    l1_weight: float = 10.0           # stage 2: L1 of G2's output to the real image (teacher forcing)
    class_b_weight: float = 1.0       # stage 2: label-B class loss (D2's class head) in D2 and G2
    from_scratch: bool = False        # joint: start from untrained networks instead of the stage runs
                                      # (the "no stages" baseline of benchmarks/two_stage.py)


@dataclass
class JointConfig:
    """The joint stage: G1 -> G2 on G1's own intermediates. Each loss term of the generators has a weight
    (0 turns it off; None: the weight the same term had in its stage) and `*_updates`: which generators its
    gradient updates (G1, G2 or both)."""
    lr_g: float = 1e-4                # both generators (fine-tuning: lower than the stages' rates)
    lr_d: float = 2e-4                # both discriminators
    lr_c: float = 1e-3                # the label-A classifier C (learns from real images, from scratch)
    adv_mask: float = 1.0             # D1's adversarial loss on G1's intermediates
    adv_mask_updates: list[str] = field(default_factory=lambda: ["G1"])
    class_mask: float | None = None   # D1's class head: G1's intermediate shows label A (stage 1: train.aux_weight)
    class_mask_updates: list[str] = field(default_factory=lambda: ["G1"])
    diversity: float | None = None    # mode seeking among G1's intermediates of one label A (train.diversity_weight)
    diversity_updates: list[str] = field(default_factory=lambda: ["G1"])
    adv_image: float = 1.0            # D2's adversarial loss on (final image, G1's intermediate, label B)
    adv_image_updates: list[str] = field(default_factory=lambda: ["G2"])
    class_b: float | None = None      # D2's class head: the final image shows label B (stages.class_b_weight)
    class_b_updates: list[str] = field(default_factory=lambda: ["G2"])
    class_a: float = 1.0              # classifier C (trained on real images' grey detail): the final image shows label A
    class_a_updates: list[str] = field(default_factory=lambda: ["G1", "G2"])
    l1_teacher: float | None = None   # G2 on the real intermediate: L1 to the real image, keeps G2 on real data
                                      # (stages.l1_weight)
    l1_teacher_updates: list[str] = field(default_factory=lambda: ["G2"])

    TERMS = ("adv_mask", "class_mask", "diversity", "adv_image", "class_b", "class_a", "l1_teacher")


STAGES = ("all", "stage1", "stage2", "joint")
GENERATORS = ("G1", "G2")


def checks(config) -> list[tuple[bool, str]]:
    st, j = config.stages, config.joint
    return [
        (st.stage in STAGES, f"stages.stage must be one of {', '.join(STAGES)}, not {st.stage!r}"),
        (len(st.fractions) == 3 and all(f >= 0 for f in st.fractions) and sum(st.fractions) > 0,
         f"stages.fractions must be three shares >= 0 (stage1, stage2, joint), not {st.fractions}"),
        (min(st.g2_width, st.d2_width, st.z2_dim) >= 1, "stages.g2_width, d2_width and z2_dim must be positive"),
        (st.l1_weight >= 0 and st.class_b_weight >= 0, "stages.l1_weight and stages.class_b_weight must be >= 0"),
        (j.lr_g > 0 and j.lr_d > 0 and j.lr_c > 0, "joint.lr_g, joint.lr_d and joint.lr_c must be positive"),
        *[(getattr(j, t) is not None and getattr(j, t) >= 0, f"joint.{t} must be >= 0 (0 turns the term off)")
          for t in JointConfig.TERMS],
        *[(bool(getattr(j, f"{t}_updates")) and all(g in GENERATORS for g in getattr(j, f"{t}_updates")),
           f"joint.{t}_updates must name the generators the term updates: G1, G2 or G1,G2; not {getattr(j, f'{t}_updates')}")
          for t in JointConfig.TERMS],
    ]


def resolve(config) -> None:
    """Joint terms left at None weigh what they weighed in their stage."""
    for term, key in (("class_mask", None), ("diversity", "train.diversity_weight"),
                      ("class_b", "stages.class_b_weight"), ("l1_teacher", "stages.l1_weight")):
        if getattr(config.joint, term) is None:
            setattr(config.joint, term, config.aux_weight() if key is None else config.get(key))
