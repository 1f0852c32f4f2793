"""Evaluation of an embedder (the similarity task) on held-out images it never trained on.

Verification ("are these two the same?"): balanced pairs of test images (same
class = similar), accuracy with the threshold chosen by 10-fold
cross-validation as in the LFW protocol (the threshold is fitted on nine folds
and scored on the tenth), plus ROC AUC and the equal error rate.
Retrieval ("find the ones like this"): precision@1, R-precision and MAP@R from
pytorch-metric-learning's AccuracyCalculator, every test image a query
against all the others.
Invariance (eval/invariance.py): ROC AUC and EER with the second image of every
pair mirrored, and again moved a few pixels; precision@1 with each query so
changed.

The k-NN behind AccuracyCalculator is PML's pure-torch CustomKNN (exact, on
cosine similarity, in batches), not faiss: a 10,000-image test split takes a
second or two exactly, faiss would add a compiled dependency (not on PyPI for
every platform) for speed that only matters at millions of images, and an
exact search means the numbers are not approximations.

Pictures: a 2-D map of the test embeddings coloured by class (t-SNE when
scikit-learn is installed, as it is with PML; otherwise PCA), and query | top-8
sheets.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from ..errors import UserError
from .invariance import NOTE as INVARIANCE_NOTE
from .invariance import ROWS as INVARIANCE_ROWS
from .invariance import changed_embeddings, precision_at_1
from ..untrusted import optional_module
from ..visual import save_grid

FOLDS = 10
PAIRS = 6000  # LFW: 10 folds of 300 similar + 300 dissimilar pairs
MAP_IMAGES = 2000  # points on the 2-D map
SHEET_QUERIES = 10


def best_threshold(scores: torch.Tensor, positive: torch.Tensor) -> float:
    """The similarity threshold with the best balanced accuracy (mean of the true-positive and true-negative
    rates) on these scores: 'similar' means score >= threshold. Halfway between neighbouring scores."""
    scores, positive = scores.double(), positive.bool()
    order = scores.argsort(descending=True)
    s, p = scores[order], positive[order].double()
    tp = p.cumsum(0)  # calling the first i+1 similar
    fp = (1 - p).cumsum(0)
    n_pos, n_neg = p.sum().clamp(min=1), (1 - p).sum().clamp(min=1)
    balanced = (tp / n_pos + (n_neg - fp) / n_neg) / 2
    balanced = torch.cat([balanced.new_tensor([0.5]), balanced])  # calling nothing similar
    i = int(balanced.argmax())
    if i == 0:
        return float(s[0]) + 1e-6
    below = s[i] if i < len(s) else s[-1] - 1e-3
    return float((s[i - 1] + below) / 2)


def verification_pairs(labels: torch.Tensor, n_pairs: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """n_pairs/2 same-class and n_pairs/2 different-class pairs (i, j, same), shuffled, from a seeded generator."""
    g = torch.Generator().manual_seed(seed)
    n, half = len(labels), n_pairs // 2
    members = {int(c): torch.nonzero(labels == c).squeeze(1) for c in labels.unique()}
    usable = [c for c, m in members.items() if len(m) >= 2]
    if not usable or len(members) < 2:
        raise UserError("verification needs at least 2 classes with 2 images each in the test split")
    same_i, same_j = [], []
    while len(same_i) < half:
        c = usable[int(torch.randint(len(usable), (1,), generator=g))]
        a, b = members[c][torch.randperm(len(members[c]), generator=g)[:2]].tolist()
        same_i.append(a)
        same_j.append(b)
    diff_i, diff_j = [], []
    while len(diff_i) < half:
        a, b = torch.randint(n, (2,), generator=g).tolist()
        if labels[a] != labels[b]:
            diff_i.append(a)
            diff_j.append(b)
    i, j = torch.tensor(same_i + diff_i), torch.tensor(same_j + diff_j)
    same = torch.arange(2 * half) < half
    order = torch.randperm(2 * half, generator=g)
    return i[order], j[order], same[order]


def lfw_accuracy(scores: torch.Tensor, same: torch.Tensor, folds: int = FOLDS) -> dict:
    """Accuracy per fold with the threshold fitted on the other folds (LFW's unrestricted protocol)."""
    fold = torch.arange(len(scores)) % folds
    accuracies, thresholds = [], []
    for f in range(folds):
        train, test = fold != f, fold == f
        t = best_threshold(scores[train], same[train])
        accuracies.append(((scores[test] >= t) == same[test]).double().mean().item())
        thresholds.append(t)
    acc = torch.tensor(accuracies)
    return {"accuracy": acc.mean().item(), "accuracy_std": acc.std().item(), "threshold_mean": sum(thresholds) / folds}


def roc_auc_eer(scores: torch.Tensor, same: torch.Tensor) -> tuple[float, float]:
    """ROC AUC and equal error rate (where false accepts = false rejects), via torchmetrics."""
    from torchmetrics.functional.classification import binary_auroc, binary_roc

    target = same.long()
    auc = binary_auroc(scores.float(), target).item()
    fpr, tpr, _ = binary_roc(scores.float(), target)
    fnr = 1 - tpr
    i = int((fpr - fnr).abs().argmin())
    return auc, ((fpr[i] + fnr[i]) / 2).item()


def retrieval(embeddings: torch.Tensor, labels: torch.Tensor) -> dict:
    """precision@1, R-precision and MAP@R, each test image a query against all the others (PML)."""
    def pml(module: str):  # the [similarity] extra
        return optional_module(f"pytorch_metric_learning.{module}")

    knn = pml("utils.inference").CustomKNN(pml("distances").CosineSimilarity(), batch_size=1024)
    calc = pml("utils.accuracy_calculator").AccuracyCalculator(
        include=("precision_at_1", "r_precision", "mean_average_precision_at_r"), k="max_bin_count", knn_func=knn,
        device=torch.device("cpu"))
    r = calc.get_accuracy(embeddings, labels, embeddings, labels, ref_includes_query=True)
    return {"precision_at_1": r["precision_at_1"], "r_precision": r["r_precision"], "map_at_r": r["mean_average_precision_at_r"]}


def map_2d(embeddings: torch.Tensor, labels: torch.Tensor, class_names: list[str], path: Path, seed: int) -> str:
    """A scatter plot of the embeddings in 2-D, coloured by class; returns the method used."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from ..untrusted import printable

    try:
        from sklearn.manifold import TSNE

        points = TSNE(2, init="pca", perplexity=min(30.0, (len(embeddings) - 1) / 3), random_state=seed).fit_transform(embeddings.numpy())
        method = "t-SNE"
    except ImportError:
        centred = embeddings - embeddings.mean(0)
        _, _, v = torch.pca_lowrank(centred, q=2, center=False)
        points, method = (centred @ v[:, :2]).numpy(), "PCA"
    fig = Figure(figsize=(7, 6), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for c, name in enumerate(class_names):
        mask = (labels == c).numpy()
        if mask.any():
            ax.scatter(points[mask, 0], points[mask, 1], s=4, label=printable(name, 30), color=_colour(c, len(class_names)))
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"test embeddings ({method}), coloured by class", fontsize=10)
    if len(class_names) <= 20:
        ax.legend(markerscale=3, fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path)
    return method


def _colour(i: int, n: int):
    import matplotlib

    return matplotlib.colormaps["tab10" if n <= 10 else "tab20"](i % 20)


def query_sheet(images: torch.Tensor, embeddings: torch.Tensor, labels: torch.Tensor | None, path: Path,
                class_names: list[str] | None, k: int = 8, seed: int = 0) -> Path:
    """Rows of query | its k nearest other test images; one query per class (or random ones)."""
    g = torch.Generator().manual_seed(seed)
    if labels is not None:
        queries = [int(torch.nonzero(labels == c).squeeze(1)[0]) for c in labels.unique()[:SHEET_QUERIES]]
    else:
        queries = torch.randperm(len(images), generator=g)[:SHEET_QUERIES].tolist()
    sims = embeddings[queries] @ embeddings.T
    sims[torch.arange(len(queries)), torch.tensor(queries)] = -2
    nearest = sims.topk(min(k, len(images) - 1), dim=1).indices
    cells = torch.cat([torch.cat([images[q:q + 1], images[nearest[r]]]) for r, q in enumerate(queries)])
    names = None
    if labels is not None and class_names:
        names = [f"{class_names[int(labels[q])]}: {int((labels[nearest[r]] == labels[q]).sum())}/{nearest.shape[1]}"
                 for r, q in enumerate(queries)]
    return save_grid(cells, path, nrow=nearest.shape[1] + 1, row_names=names,
                     title=f"query | its {nearest.shape[1]} nearest test images (row: class, how many share it)")


def evaluate_embedder(model, images: torch.Tensor, labels: torch.Tensor, class_names: list[str], out: str | Path,
                      seed: int = 0, progress: bool = True, source: str = "model") -> dict:
    """Score an Embedder pipeline on held-out labelled images; writes report.json/.md and PNGs to `out`."""
    from .report import write_report

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    e = model.embed(images)
    i, j, same = verification_pairs(labels, PAIRS, seed)
    scores = (e[i] * e[j]).sum(1)
    verification = lfw_accuracy(scores, same)
    auc, eer = roc_auc_eer(scores, same)
    at_learned = ((scores >= model.threshold) == same).double().mean().item()
    metrics = {**verification, "roc_auc": auc, "eer": eer, "accuracy_at_learned_threshold": at_learned,
               "learned_threshold": model.threshold, **retrieval(e, labels)}
    for change, moved in changed_embeddings(model, images, seed).items():  # one side mirrored / moved
        metrics[f"roc_auc_{change}"], metrics[f"eer_{change}"] = roc_auc_eer((e[i] * moved[j]).sum(1), same)
        metrics[f"precision_at_1_{change}"] = precision_at_1(moved, e, labels)
    subset = torch.randperm(len(e), generator=torch.Generator().manual_seed(seed))[:MAP_IMAGES]
    method = map_2d(e[subset], labels[subset], class_names, out / "map.png", seed)
    query_sheet(images, e, labels, out / "queries.png", class_names, seed=seed)
    report = {
        "kind": "similarity", "source": source, "test_images": len(images), "pairs": len(same), "folds": FOLDS,
        "knn": "pytorch-metric-learning CustomKNN (exact, cosine similarity)", "map_method": method,
        "model": metrics, "pictures": {"map": "map.png", "queries": "queries.png"},
        "timing_s": {"total": round(time.time() - started, 2)},
    }
    return write_report(report, out, render_markdown, progress)


def evaluate_pairs(model, fields: dict, out: str | Path, progress: bool = True, source: str = "model", seed: int = 0) -> dict:
    """Verification only, on a CSV's held-out pairs or triplets (no classes: no retrieval metrics)."""
    from .report import write_report

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    a = model.embed(fields["image"])
    if "similar" in fields:
        b, same = fields["other"], fields["similar"].bool()
    else:
        b, a = torch.cat([fields["positive"], fields["negative"]]), a.repeat(2, 1)
        same = torch.arange(len(b)) < len(b) // 2
    scores = (a * model.embed(b)).sum(1)
    if same.all() or not same.any():
        raise UserError("the held-out rows are all similar or all dissimilar; verification needs both")
    folds = min(FOLDS, int(len(scores)))
    metrics = {**lfw_accuracy(scores, same, folds), "accuracy_at_learned_threshold":
               ((scores >= model.threshold) == same).double().mean().item(), "learned_threshold": model.threshold}
    if folds >= 2:
        metrics["roc_auc"], metrics["eer"] = roc_auc_eer(scores, same)
        for change, moved in changed_embeddings(model, b, seed).items():
            metrics[f"roc_auc_{change}"], metrics[f"eer_{change}"] = roc_auc_eer((a * moved).sum(1), same)
    report = {"kind": "similarity", "source": source, "pairs": len(same), "folds": folds, "model": metrics, "pictures": {}}
    return write_report(report, out, render_markdown, progress)


ROWS = [
    ("accuracy", "verification accuracy (10-fold CV threshold, LFW protocol)", "pct"),
    ("accuracy_std", "  its standard deviation over the folds", "pct"),
    ("roc_auc", "ROC AUC", "num"),
    ("eer", "equal error rate", "pct"),
    ("accuracy_at_learned_threshold", "accuracy at the run's learned threshold", "pct"),
    ("learned_threshold", "learned threshold (cosine similarity)", "num"),
    ("precision_at_1", "precision@1", "pct"),
    ("r_precision", "R-precision", "pct"),
    ("map_at_r", "MAP@R", "pct"),
    *INVARIANCE_ROWS,
]


def render_markdown(r: dict) -> str:
    m = r["model"]
    lines = [f"# Similarity evaluation of {r['source']}", ""]
    if r.get("test_images"):
        lines += [f"{r['test_images']} held-out test images (never seen in training); {r['pairs']} verification pairs "
                  f"(half same class, half not) in {r['folds']} folds. Retrieval: every test image a query against "
                  f"all the others; k-NN by {r['knn']}.", ""]
    else:
        lines += [f"{r['pairs']} held-out pairs from the CSV, {r['folds']} folds.", ""]
    lines += ["| metric | value |", "|---|---|"]
    for key, label, kind in ROWS:
        if m.get(key) is not None:
            v = m[key]
            lines.append(f"| {label} | {v:.2%} |" if kind == "pct" else f"| {label} | {v:.4f} |")
    if any(m.get(key) is not None for key, _, _ in INVARIANCE_ROWS):
        lines += ["", INVARIANCE_NOTE]
    if r.get("pictures"):
        lines += ["", f"![map]({r['pictures']['map']})", "", f"2-D map: {r.get('map_method')}.", "",
                  f"![queries]({r['pictures']['queries']})"]
    return "\n".join(lines) + "\n"
