"""The main job: estimate a ROAST vector on the sentiment task and measure what it does.

Estimate on training prompts, pick alpha on the dev split, then compare unsteered and steered
accuracy on the held-out test split. Everything it makes is saved under one output folder. The
printed table starts with the estimate's yield report (`roast_tl.report.YieldReport`), which
results.json also carries as `vector_metadata["yield_report"]`.

`results.json` records the settings together with the model's, tokenizer's and task data's
fingerprints. A rerun into a folder whose results.json was made with other settings is refused
before anything is computed (use a new `--out`); with the same settings it resumes from the
saved rollouts. The vector, the test records and results.json are written together at the end,
so an interrupted run never leaves outputs of one run next to results of another.
"""

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from roast_tl._fingerprint import run_fingerprints
from roast_tl._io import atomic_write_text, read_json
from roast_tl._types import Backend, HookedModel, Positions, Scaler
from roast_tl.compare import compare
from roast_tl.estimate import estimate
from roast_tl.harness.sweep import config_difference
from roast_tl.models import load_model
from roast_tl.report import YieldReport
from roast_tl.scaling import max_norm
from roast_tl.tasks import load_task
from roast_tl.tasks.base import Task

# Settings that do not change what the demo measures: where things are, how they are spelled
# (the fingerprints stand for the model and the task data), batching (results are batch
# invariant) and the progress bars.
_NOT_COMPARED = ("model", "backend", "task", "task_path", "out", "progress", "batch_size")
_ADDED_IN_0_3: dict[str, Any] = {"task_options": {}, "chat": None}


@dataclass
class DemoConfig:
    """Settings of the demo; the defaults finish in a few minutes on 2 CPU cores.

    `task_options` are further keyword arguments of the task's loader (for `task="jsonl"`:
    `prompt_field`, `answer_field`, `grader`); `chat` as in `estimate`.
    """

    model: str | None = None
    backend: Backend | None = None
    """"bridge" or "hooked"; None: the installed TransformerLens's (see `load_model`)."""
    task: str = "sentiment"
    task_path: str | None = None
    task_options: dict[str, Any] = field(default_factory=dict)
    layers: list[int] = field(default_factory=lambda: [10])
    site: str = "resid_post"
    n_train: int = 64
    n_rollouts: int = 8
    scaler: Scaler = max_norm
    alphas: list[float] = field(default_factory=lambda: [4.0, 8.0, 16.0, 32.0])
    positions: Positions = "last"
    max_dev: int | None = None
    max_test: int | None = None
    seed: int = 0
    batch_size: int = 32
    out: str = "roast_runs/demo"
    progress: bool = True
    chat: bool | None = None


def demo_settings(config: DemoConfig, model: HookedModel, task: Task) -> dict[str, Any]:
    """What a demo run's results depend on: its settings and the model, tokenizer and task
    fingerprints (not the paths they were loaded from)."""
    settings = {k: v for k, v in asdict(config).items() if k not in _NOT_COMPARED}
    settings["scaler"] = getattr(config.scaler, "__name__", repr(config.scaler))
    for key, default in _ADDED_IN_0_3.items():  # at their defaults, 0.2 folders still resume
        if settings.get(key) == default:
            settings.pop(key)
    settings["fingerprints"] = run_fingerprints(model, task)
    return dict(json.loads(json.dumps(settings)))


def check_results_folder(out: Path, settings: dict[str, Any]) -> None:
    """Refuse a folder whose results.json was made with other settings (a ValueError)."""
    path = out / "results.json"
    if not path.exists():
        return
    stored = read_json(path)
    old = stored.get("settings") if isinstance(stored, dict) else None
    if old != settings:
        flat_old = {**old.pop("fingerprints", {}), **old} if isinstance(old, dict) else old
        flat_new = {**settings["fingerprints"], **settings}
        flat_new.pop("fingerprints")
        raise ValueError(
            f"{path} holds results made with other settings "
            f"({config_difference(flat_old, flat_new)}); pass a new --out (or move this folder "
            "away) so they are not replaced"
        )


def run_demo(config: DemoConfig) -> dict[str, Any]:
    """Run the demo and return its results (also written to `config.out`/results.json)."""
    timings: dict[str, float] = {}
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    model = load_model(config.model, backend=config.backend)
    timings["load_model_s"] = time.perf_counter() - start

    task_kwargs = {**({"path": config.task_path} if config.task_path else {})}
    task = load_task(config.task, **task_kwargs, **config.task_options)
    settings = demo_settings(config, model, task)
    check_results_folder(out, settings)
    t0 = time.perf_counter()
    vector = estimate(
        model,
        task,
        items=task.items("train")[: config.n_train],
        layers=config.layers,
        site=config.site,
        n_rollouts=config.n_rollouts,
        scaler=config.scaler,
        seed=config.seed,
        batch_size=config.batch_size,
        rollouts_path=out / "rollouts.jsonl",
        progress=config.progress,
        chat=config.chat,
    )
    timings["estimate_s"] = time.perf_counter() - t0

    comparison = compare(
        model,
        task,
        vector,
        alphas=config.alphas,
        dev=task.items("dev")[: config.max_dev],
        test=task.items("test")[: config.max_test],
        positions=config.positions,
        batch_size=config.batch_size,
        chat=config.chat,
        progress=config.progress,
    )
    timings.update(comparison.seconds)
    timings["total_s"] = time.perf_counter() - start
    unsteered, steered = comparison.unsteered, comparison.steered

    meta = vector.metadata
    table = "\n".join(
        [
            f"ROAST demo: {meta['model_name']}, task {task.name}, hooks {vector.hook_names}",
            str(YieldReport.from_dict(meta["yield_report"])),
            comparison.table(),
        ]
    )
    vector_path = vector.save(out / "vector.safetensors")
    for label, result in (("unsteered", unsteered), ("steered", steered)):
        atomic_write_text(
            out / f"test_{label}.jsonl",
            "".join(json.dumps(asdict(r)) + "\n" for r in result.records),
        )
    results = {
        "config": {**asdict(config), "scaler": config.scaler.__name__},
        "settings": settings,
        "vector_metadata": meta,
        "dev_accuracy_by_alpha": {str(a): acc for a, acc in comparison.dev_accuracy.items()},
        "chosen_alpha": comparison.alpha,
        "test": {"unsteered": unsteered.summary(), "steered": steered.summary()},
        "timings": timings,
        "table": table,
        "outputs": {
            "vector": str(vector_path),
            "rollouts": str(out / "rollouts.jsonl"),
            "records": [str(out / "test_unsteered.jsonl"), str(out / "test_steered.jsonl")],
        },
    }
    atomic_write_text(out / "results.json", json.dumps(results, indent=2, default=str))
    return results
