"""`compare`: pick alpha on dev, then unsteered vs steered accuracy on test, as one table.

The last step of the five-line workflow (`Task.from_pairs` -> `estimate` -> `compare`), and
what `roast-tl demo` prints. Alpha is chosen on the dev split only (`pick_alpha`, alpha 0
included, so a vector that does not help on dev is not applied); test is read once per side.
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from roast_tl._types import HookedModel, PositionSpec, SteeringMode
from roast_tl.evaluate import EvalResult, evaluate, pick_alpha
from roast_tl.tasks.base import Task, TaskItem
from roast_tl.vector import SteeringVector

DEFAULT_ALPHAS = (4.0, 8.0, 16.0, 32.0)
"""The alpha grid `compare` tries on dev by default (max_norm vectors on SmolLM2's residual
stream want alphas of order 4-32)."""


def result_table(rows: dict[str, EvalResult]) -> str:
    """A Markdown table of accuracy, 95% interval and n per labelled result.

    >>> print(result_table({"unsteered": EvalResult(0.5, 0.237, 0.763, 10)}))
    | test split                   | accuracy | 95% CI         |    n |
    |------------------------------|----------|----------------|------|
    | unsteered                    |    0.500 | [0.237, 0.763] |   10 |
    """
    lines = [
        "| test split                   | accuracy | 95% CI         |    n |",
        "|------------------------------|----------|----------------|------|",
    ]
    for label, r in rows.items():
        lines.append(
            f"| {label:<28} | {r.accuracy:8.3f} | [{r.ci_low:.3f}, {r.ci_high:.3f}] | {r.n:4d} |"
        )
    return "\n".join(lines)


@dataclass
class Comparison:
    """Unsteered vs steered test accuracy at the alpha `compare` picked on dev.

    `dev_accuracy` maps each alpha tried (0 included) to its dev accuracy; `seconds` holds the
    wall time of the alpha selection and of the test evaluation. `str()` and `repr()` are the
    table.
    """

    alpha: float
    dev_accuracy: dict[float, float]
    unsteered: EvalResult
    steered: EvalResult
    seconds: dict[str, float] = field(default_factory=dict)

    def table(self) -> str:
        """The dev curve on one line, then the Markdown table of the two test results."""
        curve = ", ".join(f"{a:g}: {acc:.3f}" for a, acc in self.dev_accuracy.items())
        return "\n".join(
            [
                f"dev accuracy by alpha: {curve}",
                "",
                result_table(
                    {
                        "unsteered": self.unsteered,
                        f"ROAST steered (alpha={self.alpha:g})": self.steered,
                    }
                ),
            ]
        )

    def __str__(self) -> str:
        return self.table()

    def __repr__(self) -> str:
        return self.table()


def compare(
    model: HookedModel,
    task: Task,
    vector: SteeringVector,
    *,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    dev: Sequence[TaskItem] | None = None,
    test: Sequence[TaskItem] | None = None,
    positions: PositionSpec = "last",
    mode: SteeringMode = "add",
    batch_size: int = 32,
    chat: bool | None = None,
    progress: bool = True,
) -> Comparison:
    """Pick alpha on `dev` (default: the dev split), then evaluate `test` (default: the test
    split) unsteered and steered at that alpha; the result prints as a table.

    Every alpha of `alphas` and 0 are tried on dev; `pick_alpha` takes the best (ties go to
    the smaller, so 0 wins when steering does not help). `chat` and `positions` / `mode` are
    passed to `evaluate`.

        print(roast_tl.compare(model, task, vector))
    """
    if not alphas:
        raise ValueError("compare needs at least one alpha to try on dev, e.g. alphas=[8, 16]")
    dev = list(dev) if dev is not None else task.items("dev")
    test = list(test) if test is not None else task.items("test")
    if not dev or not test:
        raise ValueError(
            f"compare needs dev and test items; task {task.name!r} has "
            f"{len(dev)} dev and {len(test)} test items (see Task.from_pairs' n_dev / n_test)"
        )
    start = time.perf_counter()

    def accuracy_on(items: Sequence[TaskItem], alpha: float, steer: bool = True) -> EvalResult:
        return evaluate(
            model,
            task,
            vector if steer else None,
            alpha,
            items=items,
            positions=positions,
            mode=mode,
            batch_size=batch_size,
            chat=chat,
            progress=progress,
        )

    dev_accuracy = {
        float(a): accuracy_on(dev, float(a)).accuracy for a in dict.fromkeys([0.0, *alphas])
    }
    alpha = pick_alpha(dev_accuracy)
    middle = time.perf_counter()
    unsteered = accuracy_on(test, 0.0, steer=False)
    # alpha 0 steers nothing (bit for bit): the unsteered result is the steered one.
    steered = unsteered if alpha == 0.0 else accuracy_on(test, alpha)
    seconds = {"alpha_selection_s": middle - start, "test_eval_s": time.perf_counter() - middle}
    return Comparison(alpha, dev_accuracy, unsteered, steered, seconds)
