"""roast_tl: ROAST activation steering (rollouts -> pairs -> activations -> normalize -> steer)
for TransformerLens hooked models."""

__version__ = "0.1.0"

from roast_tl.activations import ContrastMeans, capture_activations, contrast_means
from roast_tl.aggregate import group_means, grouped_mean_normalize, plain_mean_normalize
from roast_tl.estimate import estimate, estimate_from_rollouts, vector_from_means
from roast_tl.evaluate import EvalResult, evaluate
from roast_tl.generation import format_prompt, generate
from roast_tl.hooks import SteeringHook, steer, steering_hooks
from roast_tl.models import load_model
from roast_tl.pairs import ContrastGroup, ContrastSet, build_contrast_set
from roast_tl.rollouts import Rollout, load_rollouts, sample_rollouts, save_rollouts
from roast_tl.scaling import continuous_soft_scale, l2, max_norm, softmax
from roast_tl.sites import hook_name, resolve_hook_names
from roast_tl.tasks import Task, TaskItem, load_task
from roast_tl.vector import SteeringVector

__all__ = [
    "ContrastGroup", "ContrastMeans", "ContrastSet", "EvalResult", "evaluate", "format_prompt", "Rollout", "SteeringHook", "SteeringVector",
    "Task", "TaskItem", "build_contrast_set", "capture_activations", "continuous_soft_scale",
    "contrast_means", "estimate", "estimate_from_rollouts", "generate", "group_means",
    "grouped_mean_normalize", "hook_name", "l2", "load_model", "load_rollouts", "load_task",
    "max_norm", "plain_mean_normalize", "resolve_hook_names", "sample_rollouts", "save_rollouts",
    "softmax", "steer", "steering_hooks", "vector_from_means", "__version__",
]
