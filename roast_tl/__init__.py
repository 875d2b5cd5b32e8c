"""roast_tl: ROAST activation steering for TransformerLens hooked models.

The pipeline is rollouts -> pairs -> activations -> aggregate/scaling -> vector -> steer:

    import roast_tl

    model = roast_tl.load_model()                       # embedded SmolLM2-135M-Instruct
    task = roast_tl.load_task("sentiment")
    vector = roast_tl.estimate(model, task, items=task.items("train")[:64], layers=[10])
    with roast_tl.steer(model, vector, alpha=16.0):
        print(roast_tl.generate(model, ["Review: A joy. Positive or negative?"]))
    model.run_with_hooks(tokens, fwd_hooks=vector.fwd_hooks(16.0))  # the same, as TL hooks

The math is public in the submodules `roast_tl.scaling` (max_norm, l2_normalize, softmax_scale,
top_k_mask) and `roast_tl.aggregate` (grouped_mean_normalize, plain_mean_normalize).
"""

from roast_tl._version import __version__
from roast_tl.activations import contrast_means
from roast_tl.compare import compare
from roast_tl.estimate import estimate, estimate_from_rollouts, vector_from_means
from roast_tl.evaluate import evaluate
from roast_tl.generation import generate
from roast_tl.hooks import steer
from roast_tl.models import load_model
from roast_tl.pairs import build_contrast_set
from roast_tl.rollouts import Rollout, grade_rollouts, sample_rollouts
from roast_tl.tasks import Task, TaskItem, load_task
from roast_tl.vector import SteeringVector

__all__ = [
    "__version__",
    # load
    "load_model",
    "load_task",
    # the stages
    "sample_rollouts",
    "grade_rollouts",
    "build_contrast_set",
    "contrast_means",
    "vector_from_means",
    # one call
    "estimate",
    "estimate_from_rollouts",
    # use
    "SteeringVector",
    "steer",
    "generate",
    "evaluate",
    "compare",
    # types
    "Rollout",
    "Task",
    "TaskItem",
]
