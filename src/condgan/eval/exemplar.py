"""Evaluation of an exemplar generator ("more like this one") with exemplars from the held-out test split.

For each exemplar, OUTPUTS images are generated and compared with its OUTPUTS
nearest real training images in the embedder's space (what G was trained to
imitate for it):

- likeness: mean embedding similarity of outputs to their exemplar, beside the
  real neighbours' similarity to it and that of random pairs of real images
  (the floor: "not like it at all");
- class agreement (only where the data has classes, and only as a check: the
  generator never saw a label): how often the evaluator gives an output the
  class it gives the exemplar, beside the same for the real neighbours;
- diversity: mean pairwise distance among one exemplar's outputs, relative to
  that among its real neighbours (evaluator features; embedder features for
  data without classes);
- memorisation: pixel distance of each output to its nearest training image;
  closer than 99% of real test images are is a suspected copy (the real floor
  is 1% by construction).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from ..data import to_float, to_uint8
from ..pipelines.latents import truncation_note
from ..visual import save_grid
from .metrics import COPY_QUANTILE, mean_pairwise_distance, nearest_pixel_distance

OUTPUTS = 8
FLOOR_IMAGES = 2000  # test images whose distance to the train set sets the copy threshold
SHEET_ROWS = 8


def _mean_pairwise(features: torch.Tensor) -> float:
    """Mean over groups (G, n, F) of the mean pairwise distance within each group."""
    return sum(mean_pairwise_distance(f) for f in features) / len(features)


@torch.no_grad()
def evaluate_exemplar(model, data_config, out: str | Path, n_exemplars: int = 200, seed: int = 0,
                      progress: bool = True, source: str = "model", truncation: float | None = None) -> dict:
    """Score an exemplar generator on n_exemplars test images; write report.json, report.md and two sheets.
    truncation: every output from latents truncated at ±truncation (Exemplar.sample); None (default): off."""
    from ..data.similar import load_images
    from .report import write_report

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    train, test = load_images(data_config, "train"), load_images(data_config, "test")
    g = torch.Generator().manual_seed(seed)
    chosen = torch.randperm(len(test), generator=g)[:n_exemplars]
    exemplars = test.images[chosen]
    n = len(exemplars)
    embedder = model.embedder
    e_train, e_test = embedder.embed(train.images), embedder.embed(test.images)
    e_ex = e_test[chosen]
    neighbours = torch.cat([(e_ex[i:i + 256] @ e_train.T).topk(OUTPUTS, dim=1).indices for i in range(0, n, 256)])
    # (n * OUTPUTS, C, H, W), grouped by exemplar
    outputs = model.sample(like=exemplars, n=OUTPUTS, seed=seed, truncation=truncation)
    e_out = embedder.embed(outputs).view(n, OUTPUTS, -1)
    a, b = torch.randint(len(e_test), (2, 5000), generator=g)
    metrics = {
        "exemplar_similarity": (e_out * e_ex[:, None]).sum(2).mean().item(),
        "neighbour_similarity": (e_train[neighbours] * e_ex[:, None]).sum(2).mean().item(),
        "random_pair_similarity": (e_test[a] * e_test[b]).sum(1).mean().item(),
    }

    more, features_used = _class_and_diversity(data_config, test.num_classes > 1, train, exemplars, outputs,
                                                neighbours, e_out, e_train, progress)
    metrics.update(more)
    metrics.update(_memorisation(test, train, outputs, g))
    _sheets(out, exemplars, outputs, train, neighbours, truncation)
    report = {"kind": "exemplar", "source": source, "truncation": truncation, "exemplars": n,
              "outputs_per_exemplar": OUTPUTS,
              "diversity_features": features_used, "copy_quantile": COPY_QUANTILE, "model": metrics,
              "pictures": {"exemplars": "exemplars.png", "neighbours": "neighbours.png"},
              "timing_s": {"total": round(time.time() - started, 2)}}
    return write_report(report, out, render_markdown, progress)


def _class_and_diversity(data_config, labelled: bool, train, exemplars: torch.Tensor, outputs: torch.Tensor,
                         neighbours: torch.Tensor, e_out: torch.Tensor, e_train: torch.Tensor,
                         progress: bool) -> tuple[dict, str]:
    """Class agreement (data with classes only) and diversity: (metrics, whose features measured diversity)."""
    n, metrics = len(exemplars), {}
    if labelled:  # the evaluator judges class and diversity; it learned the labels, the generator did not
        from .evaluator import get_evaluator

        ev = get_evaluator({k: getattr(data_config.data, k) for k in ("name", "data_dir", "image_size", "channels")},
                           progress=progress)
        f_out, logits_out = ev.run(outputs)
        f_nn, logits_nn = ev.run(train.images[neighbours.flatten()])
        _, logits_ex = ev.run(exemplars)
        ex_class = logits_ex.argmax(1)[:, None]
        metrics["class_agreement"] = (logits_out.argmax(1).view(n, OUTPUTS) == ex_class).double().mean().item()
        metrics["neighbour_class_agreement"] = (logits_nn.argmax(1).view(n, OUTPUTS) == ex_class).double().mean().item()
        f_out, f_nn = f_out.view(n, OUTPUTS, -1), f_nn.view(n, OUTPUTS, -1)
        features_used = "evaluator"
    else:
        f_out, f_nn = e_out, e_train[neighbours]
        features_used = "embedder"
    metrics["diversity_outputs"] = _mean_pairwise(f_out)
    metrics["diversity_neighbours"] = _mean_pairwise(f_nn)
    metrics["diversity_ratio"] = metrics["diversity_outputs"] / max(metrics["diversity_neighbours"], 1e-12)
    return metrics, features_used


def _memorisation(test, train, outputs: torch.Tensor, g: torch.Generator) -> dict:
    """Suspected copies: outputs closer to a training image than COPY_QUANTILE of real test images are."""
    floor_idx = torch.randperm(len(test), generator=g)[:FLOOR_IMAGES]
    floor, _ = nearest_pixel_distance(test.images[floor_idx], train.images)
    threshold = torch.quantile(floor.double(), COPY_QUANTILE).item()
    dist, _ = nearest_pixel_distance(to_uint8(outputs), train.images)
    return dict(copy_threshold=threshold, suspected_copies=(dist < threshold).double().mean().item(),
                suspected_copies_floor=(floor < threshold).double().mean().item(), exact_copies=int((dist == 0).sum()))


def _sheets(out: Path, exemplars: torch.Tensor, outputs: torch.Tensor, train, neighbours: torch.Tensor,
            truncation: float | None) -> None:
    """exemplars.png (each exemplar and its outputs) and neighbours.png (each exemplar and its real neighbours)."""
    n = len(exemplars)
    rows = min(SHEET_ROWS, n)
    grouped = outputs.view(n, OUTPUTS, *outputs.shape[1:])[:rows]
    save_grid(torch.cat([to_float(exemplars[:rows])[:, None], grouped], 1).flatten(0, 1), out / "exemplars.png",
              nrow=OUTPUTS + 1, title=f"test exemplar | {OUTPUTS} generated images like it" + truncation_note(truncation))
    real = to_float(train.images[neighbours[:rows].flatten()]).view(rows, OUTPUTS, *outputs.shape[1:])
    save_grid(torch.cat([to_float(exemplars[:rows])[:, None], real], 1).flatten(0, 1), out / "neighbours.png",
              nrow=OUTPUTS + 1, title=f"test exemplar | its {OUTPUTS} nearest real training images (embedder)")


def render_markdown(r: dict) -> str:
    m = r["model"]
    lines = [f"# Exemplar evaluation of {r['source']}", "",
             f"{r['exemplars']} exemplars from the held-out test split, {r['outputs_per_exemplar']} generated images each, "
             f"compared with each exemplar's {r['outputs_per_exemplar']} nearest real training images (embedder space)"
             f"{truncation_note(r.get('truncation'))}.", "",
             "| metric | generated | real neighbours | note |", "|---|---|---|---|",
             f"| embedding similarity to the exemplar | {m['exemplar_similarity']:.3f} | {m['neighbour_similarity']:.3f} | "
             f"random real pairs: {m['random_pair_similarity']:.3f} |"]
    if m.get("class_agreement") is not None:
        lines.append(f"| evaluator class agreement with the exemplar | {m['class_agreement']:.1%} | "
                     f"{m['neighbour_class_agreement']:.1%} | a check only: no labels were used in training |")
    lines += [f"| diversity among one exemplar's images ({r['diversity_features']} features) | {m['diversity_outputs']:.3f} | "
              f"{m['diversity_neighbours']:.3f} | ratio {m['diversity_ratio']:.2f} |",
              f"| suspected copies of training images | {m['suspected_copies']:.2%} | {m['suspected_copies_floor']:.2%} "
              f"(held-out test images) | closer than the {r['copy_quantile']:.0%} quantile of real test images' distance "
              f"({m['copy_threshold']:.4f}) |",
              f"| exact copies | {m['exact_copies']} | | |", "",
              "![exemplars](exemplars.png)", "", "![neighbours](neighbours.png)"]
    return "\n".join(lines) + "\n"
