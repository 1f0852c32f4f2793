"""The report of a two-stage evaluation (eval/two_stage.py): report.md and the cross-accuracy picture."""

from __future__ import annotations

from pathlib import Path

import torch

from .report import _fmt


def cross_png(cross: dict, names_a: list[str], names_b: list[str], path: Path) -> Path:
    """Two heat maps side by side: label-A and label-B accuracy for each requested (A, B) pair."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2.5 + 0.9 * len(names_b), 1.5 + 0.4 * len(names_a)), dpi=100)
    FigureCanvasAgg(fig)
    for k, (key, title) in enumerate((("label_a_accuracy", "label-A accuracy"), ("label_b_accuracy", "label-B accuracy"))):
        ax = fig.add_subplot(1, 2, k + 1)
        m = torch.tensor([[float("nan") if v is None else v for v in row] for row in cross[key]])
        ax.imshow(m.numpy(), cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(len(names_b)), names_b, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(names_a)), names_a if k == 0 else [""] * len(names_a), fontsize=8)
        ax.set_title(title, fontsize=9)
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                if m[i, j] == m[i, j]:
                    ax.text(j, i, f"{100 * m[i, j]:.0f}", ha="center", va="center", fontsize=6,
                            color="white" if m[i, j] > 0.5 else "black")
    fig.suptitle("requested label A (rows) x label B (columns): % of images showing each label", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    return path


SUMMARY_ROWS = [  # key, label, how to read it, format
    ("label_a_accuracy", "label-A accuracy (category of the final image)", "higher", "pct"),
    ("label_b_accuracy", "label-B accuracy (colour of the final image)", "higher", "pct"),
    ("both_accuracy", "both labels right", "higher", "pct"),
    ("iou", "silhouette IoU, final image vs its intermediate", "higher; 1 = G2 kept the shape exactly", "num"),
    ("iou_below_085", "images with IoU below 0.85", "lower", "pct"),
    ("stage1_accuracy", "stage 1: label-A accuracy of G1's intermediates", "higher", "pct"),
    ("fid", "FID of the final images (grey detail, evaluator features)", "lower", "num"),
    ("stage1_fid", "FID of the intermediates (intermediates' evaluator features)", "lower", "num"),
]


def render_markdown(r: dict) -> str:
    """report.md: the summary beside the real floor, the swap tests, per-label and cross accuracy, pictures."""
    return "\n".join(_summary(r) + _swaps(r) + _per_label(r) + _pictures_and_notes(r))


def _summary(r: dict) -> list[str]:
    m, f = r["model"], r["real_floor"]
    lines = [
        f"# condgan two-stage evaluation: {r['source']}", "",
        f"{r['settings']['n_images']} images of **{r['dataset']}**: {r['settings']['n_per_pair']} for each of "
        f"{len(r['label_a_names'])} labels A x {len(r['label_b_names'])} labels B. The **real floor** measures "
        f"{r['settings']['floor']} the same way: the best a perfect pipeline could expect.", "",
        f"- label A is judged by {r['judges']['label_a']} on the grey detail (maximum over the channels);",
        f"- label B by {r['judges']['label_b']};",
        f"- G1's intermediates by {r['judges']['stage1']}, trained on real intermediates.", "",
        "| metric | model | real floor | how to read |", "|---|---:|---:|---|",
    ]
    for key, label, note, kind in SUMMARY_ROWS:
        lines.append(f"| {label} | {_fmt(m.get(key), kind)} | {_fmt(f.get(key), kind)} | {note} |")
    return lines


def _swaps(r: dict) -> list[str]:
    b, a = r["swap_tests"]["swap_b"], r["swap_tests"]["swap_a"]
    p = r["pictures"]
    return [
        "", "## Swap tests", "",
        f"**Swap B** — {b['intermediates']} intermediates from G1, each drawn by G2 under every label B with the same noise: "
        "the colour must follow label B while the shape and category stay.", "",
        "| measure | value | should be |", "|---|---:|---|",
        f"| label-B accuracy under the swap | {_fmt(b['label_b_accuracy'], 'pct')} | high: the colour changes |",
        f"| intermediates whose every colour came out right | {_fmt(b['colour_changes'], 'pct')} | high |",
        f"| silhouette IoU with the intermediate | {_fmt(b['iou_mean'])} | high: the shape stays |",
        f"| IoU spread across labels B (max - min, mean) | {_fmt(b['iou_spread'])} | near 0 |",
        f"| silhouette IoU between the images of one noise under different labels B | {_fmt(b.get('iou_across_b'))} | high: the shape stays |",
        f"| label-A accuracy under the swap | {_fmt(b['label_a_kept'], 'pct')} | high: the category stays |", "",
        f"![swap B]({p['swap_b']})", "",
        f"**Swap A** — for each label B, {a['noises'] // max(1, len(r['label_b_names']))} noises drawn under every label A: "
        "the category must follow label A while the colour stays.", "",
        "| measure | value | should be |", "|---|---:|---|",
        f"| label-A accuracy under the swap | {_fmt(a['label_a_accuracy'], 'pct')} | high: the category changes |",
        f"| noises whose every category came out right | {_fmt(a['category_changes'], 'pct')} | high |",
        f"| label-B accuracy under the swap | {_fmt(a['label_b_accuracy'], 'pct')} | high: the colour stays |",
        f"| noises whose colour stayed the requested one for every label A | {_fmt(a['colour_kept'], 'pct')} | high |", "",
        f"![swap A]({p['swap_a']})", "",
    ]


def _per_label(r: dict) -> list[str]:
    lines = [
        "## Per label", "",
        "| label A | accuracy | floor |", "|---|---:|---:|",
        *[f"| {row['label_a']} | {_fmt(row['accuracy'], 'pct')} | {_fmt(row['floor'], 'pct')} |" for row in r["per_label_a"]],
        "", "| label B | accuracy | floor |", "|---|---:|---:|",
        *[f"| {row['label_b']} | {_fmt(row['accuracy'], 'pct')} | {_fmt(row['floor'], 'pct')} |" for row in r["per_label_b"]],
        "", "## Cross-accuracy", "",
        "Requested label A (rows) x requested label B (columns): the share of images whose category (left) and colour "
        "(right) came out as requested; report.json has the real floor of every cell (`cross.floor`).", "",
        f"![cross accuracy]({r['pictures']['cross']})", "",
        "| A \\ B | " + " | ".join(r["label_b_names"]) + " |", "|---|" + "---:|" * len(r["label_b_names"]),
    ]
    cm = r["cross"]["model"]
    for i, name in enumerate(r["label_a_names"]):
        cells = [f"{_fmt(cm['label_a_accuracy'][i][j], 'pct')} / {_fmt(cm['label_b_accuracy'][i][j], 'pct')}"
                 for j in range(len(r["label_b_names"]))]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def _pictures_and_notes(r: dict) -> list[str]:
    p = r["pictures"]
    return ["", "(each cell: label-A accuracy / label-B accuracy)", "",
            "## Pictures", "",
            "**Grid** — rows: label A, columns: label B, each image with G1's intermediate on its left.", "",
            f"![grid]({p['grid']})", "",
            "**Category confusion of the final images** — rows: requested label A; columns: the evaluator's verdict.", "",
            f"![confusion]({p['confusion_a']})", "",
            "## Notes", "",
            "- IoU compares the final image's silhouette (grey detail above the mask level, holes filled, specks "
            "dropped: the rule that made the built-in masks) with the intermediate's foreground (its bright half, "
            "holes filled). For the built-in data the floor is 1 by construction.",
            "- FID is computed on the grey detail in the category evaluator's feature space against the real train "
            "split; colour is measured by label-B accuracy instead.",
            f"- Timing (s): {', '.join(f'{k} {v}' for k, v in r['timing_s'].items())}.", ""]
