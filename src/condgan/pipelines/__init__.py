"""What users call: `condgan.load(path)` returns the pipeline of the run's task.

    gen = condgan.load("runs/fmnist");   gen.sample(["sandal", "bag"], seed=0)       # ClassConditional
    tr = condgan.load("runs/edges");     tr.translate(edge_maps)                     # Translator
    ts = condgan.load("runs/colours");   ts.sample(label_a="sandal", label_b="red")  # TwoStage
    em = condgan.load("runs/similar");   em.embed(images); em.similarity(a, b)       # Embedder
    ex = condgan.load("runs/like");      ex.sample(like=image, n=16, seed=0)         # Exemplar
"""

from .base import Pipeline, as_images, as_output, assemble, check_count, read_user_image, to_pil
from .class_conditional import ClassConditional
from .embedder import Embedder, Exemplar
from .translator import Translator
from .two_stage import TwoStage

Generator = ClassConditional  # the name used before tasks existed

__all__ = ["Pipeline", "ClassConditional", "Translator", "TwoStage", "Embedder", "Exemplar", "Generator", "assemble",
           "as_images", "as_output", "check_count", "read_user_image", "to_pil"]
