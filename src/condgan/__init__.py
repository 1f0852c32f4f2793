"""condgan: label-conditioned image generation with proof that labels are obeyed.

    import condgan
    gen = condgan.load("runs/default")
    sandals = gen.sample("sandal", n=16, seed=0)          # float tensor in [-1, 1]
    pictures = gen.sample(["sandal", "bag"], output_type="pil")
    garments = condgan.load("runs/edges").translate(edge_maps)   # a translator
    gen = condgan.train({"task": "cgan"}, data=(images, labels, class_names), out="runs/mine", steps=2000)
"""

__version__ = "0.1.0"


def load(path, device: str = "auto"):
    """The pipeline for a run directory, checkpoint or exported folder, whatever task the model was trained for:
    ClassConditional (`sample`), Translator (`translate`), TwoStage, Embedder (`embed`) or Exemplar."""
    from .api import load as _load

    return _load(path, device)


def train(config=None, data=None, out="runs/default", **options):
    """Train a model from Python and return its pipeline (the sibling of `load`); see condgan.api.train for the
    options: config (Config, dict, YAML path), data (name, path, arrays or a torch Dataset), out, steps, epochs,
    budget_minutes, resume, overrides, quiet."""
    from .api import train as _train

    return _train(config, data, out, **options)


__all__ = ["load", "train", "__version__"]
