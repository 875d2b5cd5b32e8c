"""Command line: `roast-tl demo` (the main job), `roast-tl eval`, `roast-tl sweep`.

`python -m roast_tl ...` works too. This is the one place that maps names to strategies
(`SCALERS`); the library itself takes callables.
"""

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, get_args

from roast_tl._types import HookedModel, Positions, ReadAt, Scaler, SteeringMode
from roast_tl.scaling import l2_normalize, max_norm, softmax_scale
from roast_tl.tasks.base import SPLITS, Task

if TYPE_CHECKING:
    from roast_tl.harness.baselines import SteeringSetup

SCALERS: dict[str, Scaler] = {f.__name__: f for f in (max_norm, l2_normalize, softmax_scale)}
"""Continuous Soft Scaling functions by name, for `--scaler`."""


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _layer_sets(text: str) -> list[list[int]]:
    return [_ints(group) for group in text.split(";") if group.strip()]


def _add_common(p: argparse.ArgumentParser, *, layers: list[int]) -> None:
    """Flags every subcommand shares, spelled as the library's keywords."""
    p.add_argument(
        "--model",
        default=None,
        help="local HF folder or .gguf (default: embedded SmolLM2-135M-Instruct)",
    )
    p.add_argument(
        "--task",
        default="sentiment",
        help="sentiment, gsm8k, arithmetic, multiple_choice (needs --task-path)",
    )
    p.add_argument("--task-path", default=None, help="JSONL file for the task")
    p.add_argument("--layers", type=_ints, default=layers, help="comma-separated, e.g. 8,10")
    p.add_argument("--site", default="resid_post", help="resid_post, mlp_post, ...")
    p.add_argument(
        "--positions",
        default="last",
        choices=get_args(Positions),
        help="where the vector is applied",
    )
    p.add_argument("--n-rollouts", type=int, default=8, help="rollouts per training prompt")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (1 is much faster when other jobs share the cores)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def add_demo_parser(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    from roast_tl.harness.demo import DemoConfig

    d = DemoConfig()
    p = subparsers.add_parser(
        "demo",
        help="estimate a ROAST vector on the sentiment task and "
        "compare unsteered vs steered accuracy on held-out prompts",
    )
    _add_common(p, layers=d.layers)
    p.add_argument("--n-train", type=int, default=d.n_train, help="training prompts to roll out")
    p.add_argument("--scaler", default="max_norm", choices=sorted(SCALERS))
    p.add_argument(
        "--alphas", type=_floats, default=d.alphas, help="alpha grid tried on the dev split"
    )
    p.add_argument(
        "--max-dev", type=int, default=None, help="dev prompts for alpha selection (default: all)"
    )
    p.add_argument("--max-test", type=int, default=None, help="test prompts (default: all)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--out", default=d.out, help="output folder (resumes rollouts found there)")
    p.set_defaults(func=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from roast_tl.harness.demo import DemoConfig, run_demo

    _set_threads(args)
    config = DemoConfig(
        model=args.model,
        task=args.task,
        task_path=args.task_path,
        layers=args.layers,
        site=args.site,
        n_train=args.n_train,
        n_rollouts=args.n_rollouts,
        scaler=SCALERS[args.scaler],
        alphas=args.alphas,
        positions=args.positions,
        max_dev=args.max_dev,
        max_test=args.max_test,
        seed=args.seed,
        batch_size=args.batch_size,
        out=args.out,
        progress=not args.quiet,
    )
    results = run_demo(config)
    print()
    print(results["table"])
    timings = results["timings"]
    print(
        "\ntimings (s): " + ", ".join(f"{k.removesuffix('_s')} {v:.1f}" for k, v in timings.items())
    )
    print(
        f"saved: vector {results['outputs']['vector']}, everything in {config.out}/ (results.json)"
    )
    return 0


def _set_threads(args: argparse.Namespace) -> None:
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)


def add_eval_parser(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = subparsers.add_parser(
        "eval",
        help="greedy accuracy on a task split: unsteered, steered "
        "with a saved vector, or with a method built on the fly (--method)",
    )
    _add_common(p, layers=[10])
    p.add_argument("--split", default="test", choices=SPLITS)
    p.add_argument(
        "--max-items", type=int, default=None, help="evaluate only the first N items of the split"
    )
    source = p.add_mutually_exclusive_group()
    source.add_argument("--vector", default=None, help="a saved .safetensors steering vector")
    source.add_argument(
        "--method", default=None, help="build a method first: none, few_shot, caa, sadi, roast, ..."
    )
    p.add_argument("--alpha", type=float, default=None, help="steering strength (needed to steer)")
    p.add_argument(
        "--mode",
        default=None,
        choices=get_args(SteeringMode),
        help="default: the method's own (multiply for sadi), else add",
    )
    p.add_argument(
        "--read-at",
        default="last",
        choices=get_args(ReadAt),
        help="where --method reads activations",
    )
    p.add_argument("--few-shot", type=int, default=0, help="prepend k worked examples")
    p.add_argument("--n-train", type=int, default=64, help="training prompts for --method")
    p.add_argument("--rollouts-path", default=None, help="JSONL to cache/resume ROAST rollouts")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--save-vector", default=None, help="save the --method vector here")
    p.add_argument("--records", default=None, help="write per-item records to this JSONL file")
    p.set_defaults(func=_run_eval)


def _task_from_args(args: argparse.Namespace) -> Task:
    from roast_tl.tasks import load_task

    if args.task_path:
        return load_task(args.task, path=args.task_path)
    return load_task(args.task)


def _setup_from_args(args: argparse.Namespace, model: HookedModel, task: Task) -> "SteeringSetup":
    from roast_tl.harness.baselines import (
        MethodContext,
        SteeringSetup,
        build_method,
        few_shot_prefix,
        method_named,
    )
    from roast_tl.harness.sweep import train_subset
    from roast_tl.rollouts import sample_rollouts
    from roast_tl.vector import SteeringVector

    prefix = few_shot_prefix(task, args.few_shot) if args.few_shot else ""
    if args.vector:
        return SteeringSetup(
            "vector", SteeringVector.load(args.vector, model), prompt_prefix=prefix
        )
    if not args.method:
        return SteeringSetup("none", prompt_prefix=prefix)
    train = train_subset(task, args.n_train, args.seed)
    rollouts = []
    if method_named(args.method).needs_rollouts:
        rollouts = sample_rollouts(
            model,
            task,
            train,
            n_rollouts=args.n_rollouts,
            seed=args.seed,
            batch_size=args.batch_size,
            rollouts_path=args.rollouts_path,
            progress=not args.quiet,
        )
    ctx = MethodContext(
        model,
        task,
        train,
        args.layers,
        rollouts,
        seed=args.seed,
        site=args.site,
        read_at=args.read_at,
        positions=args.positions,
        progress=not args.quiet,
    )
    setup = build_method(args.method, ctx)
    setup.prompt_prefix = prefix + setup.prompt_prefix
    if args.save_vector and setup.vector is not None:
        print(f"saved vector: {setup.vector.save(args.save_vector)}")
    return setup


def _run_eval(args: argparse.Namespace) -> int:
    from roast_tl.evaluate import evaluate
    from roast_tl.models import load_model

    _set_threads(args)
    model = load_model(args.model)
    task = _task_from_args(args)
    setup = _setup_from_args(args, model, task)
    if setup.vector is not None and args.alpha is None:
        raise ValueError(
            "steering needs --alpha; tune it on dev with `roast-tl sweep` "
            "(SmolLM2's residual stream wants alphas of order 4-32 with max_norm "
            "vectors)"
        )
    items = task.items(args.split)[: args.max_items]
    result = evaluate(
        model,
        task,
        setup.vector,
        args.alpha or 0.0,
        items=items,
        positions=args.positions,
        mode=args.mode or setup.mode,
        prompt_prefix=setup.prompt_prefix,
        batch_size=args.batch_size,
        records_path=args.records,
        progress=not args.quiet,
    )
    print(
        f"{task.name}/{args.split} [{setup.method}, alpha={args.alpha or 0.0:g}]: accuracy "
        f"{result.accuracy:.3f} (95% CI [{result.ci_low:.3f}, {result.ci_high:.3f}], "
        f"n={result.n})"
    )
    if args.records:
        print(f"records: {args.records}")
    return 0


def add_sweep_parser(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    from roast_tl.harness.baselines import METHODS

    p = subparsers.add_parser(
        "sweep",
        help="compare steering methods: alpha (and layers) tuned "
        "on dev, test accuracy mean ± std over seeds; writes CSV, JSON, "
        "Markdown, PNG",
    )
    _add_common(p, layers=[10])
    p.add_argument(
        "--methods",
        default="none,few_shot,caa,sadi,roast_plain,roast",
        help=f"comma-separated, from {sorted(METHODS)}",
    )
    p.add_argument(
        "--layer-candidates",
        type=_layer_sets,
        default=None,
        help="layer sets to choose from on dev, ';'-separated, e.g. '6;10;14;6,10'",
    )
    p.add_argument(
        "--read-at", default="last", choices=get_args(ReadAt), help="where activations are read"
    )
    p.add_argument("--seeds", type=_ints, default=[42, 22, 52])
    p.add_argument("--n-train", type=int, default=64)
    p.add_argument("--max-dev", type=int, default=None, help="cap on dev items (default: all)")
    p.add_argument("--max-test", type=int, default=None, help="cap on test items (default: all)")
    p.add_argument("--max-new-tokens", type=int, default=None)
    p.add_argument(
        "--alphas",
        type=_floats,
        default=None,
        help="alpha grid for additive methods (default: each method's own)",
    )
    p.add_argument(
        "--multiply-alphas", type=_floats, default=None, help="alpha grid for SADI / multiply"
    )
    p.add_argument(
        "--out", default="roast_runs/sweep", help="output folder (resumes cells found there)"
    )
    p.set_defaults(func=_run_sweep)


def _run_sweep(args: argparse.Namespace) -> int:
    from roast_tl.harness.sweep import markdown_table, run_sweep, summarize
    from roast_tl.models import load_model

    _set_threads(args)
    model = load_model(args.model)
    task = _task_from_args(args)
    alphas: dict[SteeringMode, list[float]] = {}
    if args.alphas:
        alphas["add"] = args.alphas
    if args.multiply_alphas:
        alphas["multiply"] = args.multiply_alphas
    rows = run_sweep(
        model,
        task,
        [m for m in args.methods.split(",") if m],
        layers=args.layers,
        layer_candidates=args.layer_candidates,
        site=args.site,
        read_at=args.read_at,
        positions=args.positions,
        out_dir=args.out,
        seeds=args.seeds,
        n_train=args.n_train,
        n_rollouts=args.n_rollouts,
        max_dev=args.max_dev,
        max_test=args.max_test,
        max_new_tokens=args.max_new_tokens,
        alphas=alphas,
        batch_size=args.batch_size,
        progress=not args.quiet,
    )
    print(markdown_table(summarize(rows)))
    print(f"written: {args.out}/rows.csv, summary.json, summary.md, dev_accuracy_vs_alpha.png")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="roast-tl", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_demo_parser(subparsers)
    add_eval_parser(subparsers)
    add_sweep_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (ValueError, ImportError, FileNotFoundError) as err:
        print(f"roast-tl {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
