"""A paired image-to-image translator (the translate task)."""

from __future__ import annotations


import torch

from ..data.imageset import resolve_class
from ..errors import UserError
from .base import Pipeline, as_images, as_output


class Translator(Pipeline):
    """A paired image-to-image translator: `translate(images)` (masks, edge maps, sketches in; images out)."""

    task = "translate"
    needs = ("image", "source")
    spec_arguments = {"generator": [("num_classes", "label", "num_classes"), ("source_channels", "source", "channels"),
                                    ("channels", "image", "channels"), ("height", "image", "height"),
                                    ("width", "image", "width")]}
    card_tags = ("gan", "image-to-image", "pix2pix")
    pipeline_tag = "image-to-image"

    def usage(self) -> str:
        label = f", labels={self.class_names[0]!r}" if self.uses_label else ""
        return (f"outputs = model.translate(sources{label}, output_type=\"pil\")  # sources: PIL images, uint8 arrays "
                "or float tensors in [-1, 1]")

    @property
    def data(self) -> dict:
        """The run's data config, as keyword arguments for `condgan.data.paired.load_pairs`."""
        d = {k: self._data.get(k) for k in ("name", "data_dir", "direction", "image_size", "classes", "paths_outside")}
        d["direction"] = d["direction"] or "AtoB"
        return d

    @property
    def source(self):
        return self.spec["source"]

    @property
    def target(self):
        return self.spec["image"]

    @property
    def class_names(self) -> list[str] | None:
        return list(self.spec["label"].class_names) if "label" in self.spec else None

    @property
    def uses_label(self) -> bool:
        """Whether the network takes a class label beside the source (trained with model.use_label)."""
        return self.net.arguments.get("num_classes", 0) > 0

    def as_sources(self, images) -> torch.Tensor:
        """uint8 arrays (H,W / H,W,C / N,H,W / N,H,W,C), float tensors in [-1, 1] (C,H,W / N,C,H,W),
        or PIL images (one or a list) -> float (N, C, H, W) in [-1, 1] with the source's channels."""
        return as_images(images, self.source, "translate")

    @torch.no_grad()
    def translate(self, images, seed: int | None = 0, output_type: str = "pt", batch_size: int = 256,
                  labels=None):
        """Outputs for `images`; one noise draw per image from `seed` (None: random).
        output_type: 'pt' (float in [-1, 1]), 'uint8' (tensor) or 'pil'. `labels` (names or ids) when the
        translator was trained with model.use_label (otherwise they are ignored)."""
        x = self.as_sources(images)
        cond = []
        if self.uses_label:
            if labels is None:
                raise UserError(f"this translator also needs a label per image (one of {', '.join(self.class_names)})")
            if isinstance(labels, (str, int)):
                labels = [labels] * len(x)
            ids = torch.tensor([resolve_class(lbl, self.class_names) for lbl in labels], dtype=torch.int64)
            if len(ids) != len(x):
                raise UserError(f"{len(x)} images but {len(ids)} labels")
            cond = [ids]
        z = self.noise(len(x), seed)
        out = torch.cat([self.net(z[i:i + batch_size].to(self.device), x[i:i + batch_size].to(self.device),
                                  *[c[i:i + batch_size].to(self.device) for c in cond]).float().cpu()
                         for i in range(0, len(x), batch_size)])
        return as_output(out, output_type)

    def pairs(self, split: str):
        """A split of the pairs this translator was trained on (to apply, sheet or score it)."""
        from ..data.paired import load_pairs

        return load_pairs(split=split, **self.data)
