"""condgan's own tasks, one module each, registered by name (registry.py says what a task declares).

Each task says where its data comes from
(`load_data`), which training step it uses (`make_step`: the one GAN step of
tasks/gan.py for generators, with the fields' roles; the metric-learning step
for similarity) and what its preview picture shows (`preview`). A task may also
choose the items of batch k (`sampler`: class-balanced batches) or what a
batch holds (`select`: an exemplar's neighbour), always as a pure function of
(seed, k). The one loop (training/trainer.py) drives every task; its `pipeline`
is the object users call.

| task                 | G is conditioned on          | D sees                       | target |
|----------------------|------------------------------|------------------------------|--------|
| cgan                 | label                        | image, label                 | image  |
| translate            | source (+ label if given)    | image, source (+ label)      | image  |
| two-stage, stage1    | label_a                      | mask, label_a                | mask   |
| two-stage, stage2    | mask, label_b                | image, mask, label_b         | image  |
| two-stage, joint     | G1: label_a; G2: G1's mask, label_b (two_stage/joint.py: the GAN step twice, chained) | image |
| exemplar             | an exemplar's embedding      | image, that embedding        | a neighbour of the exemplar |
| similarity           | (no GAN: an embedding network, similarity/metric.py)                       |

(two-stage: two_stage/; `mask` is the intermediate, whatever its kind.)
"""


from . import cgan, translate, two_stage, similarity, exemplar  # noqa: F401  (each registers its task; --help lists them in this order)
from .base import GRID_COLUMNS, MAX_GRID_ROWS, GANTask, Roles, build_class_gan, build_translator, on_device, on_run_device
from .cgan import ClassConditionalTask
from .exemplar import ExemplarTask
from .similarity import SimilarityTask
from .translate import TranslationTask
from .two_stage import TwoStageTask

__all__ = ["GANTask", "Roles", "ClassConditionalTask", "TranslationTask", "TwoStageTask", "SimilarityTask", "ExemplarTask",
           "GRID_COLUMNS", "MAX_GRID_ROWS", "build_class_gan", "build_translator", "on_device", "on_run_device"]
