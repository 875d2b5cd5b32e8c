"""The warning classes roast_tl raises about suspicious data or settings.

Filter them like any warning: `warnings.filterwarnings("ignore", category=RoastWarning)` (all of
them) or `category=LowYieldWarning` (only the estimate's yield warnings).
"""


class RoastWarning(UserWarning):
    """Warnings roast_tl raises about suspicious data or settings; filter with
    `warnings.filterwarnings("ignore", category=RoastWarning)`."""


class LowYieldWarning(RoastWarning):
    """`estimate` / `estimate_from_rollouts` got little real correct-vs-wrong contrast.

    Fires when fallback groups are more than half the contrast groups, when no prompt has 2
    rollouts (`n_rollouts < 2`), when rollout accuracy is exactly 0 or 1, and when the task's
    grader marks items' own `gold_completion` wrong (a self-check run before sampling). The
    messages come from `roast_tl.report.YieldReport.problems`; the vector's
    `metadata["yield_report"]` holds the numbers and example completions as graded.
    """


class UncachedGenerateWarning(RoastWarning):
    """A steering hook saw a forward pass re-run the previous one plus one token, as TL's
    `model.generate(use_past_kv_cache=False)` does: "last" (and "prefill", negative indices)
    then steer only each pass's newest token, so the output is not the steered generation of
    `roast_tl.generate`. Use `roast_tl.generate`, or TL's generate with its KV cache."""
