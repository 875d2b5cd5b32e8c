"""Command line: `roast-tl demo` (the main job), `roast-tl eval`, `roast-tl sweep`.

`python -m roast_tl ...` works too.
"""

import argparse
import sys
from collections.abc import Sequence


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def add_demo_parser(subparsers: argparse._SubParsersAction) -> None:
    from roast_tl.demo import DemoConfig

    d = DemoConfig()
    p = subparsers.add_parser("demo", help="estimate a ROAST vector on the sentiment task and "
                              "compare unsteered vs steered accuracy on held-out prompts")
    p.add_argument("--model", default=None, help="local HF folder or .gguf (default: embedded SmolLM2-135M-Instruct)")
    p.add_argument("--task", default=d.task)
    p.add_argument("--layers", type=_ints, default=d.layers, help="comma-separated layers, e.g. 8,10")
    p.add_argument("--hook-site", default=d.hook_site)
    p.add_argument("--n-train", type=int, default=d.n_train, help="training prompts to roll out")
    p.add_argument("--n-rollouts", type=int, default=d.n_rollouts)
    p.add_argument("--alphas", type=_floats, default=d.alphas, help="alpha grid tried on the dev split")
    p.add_argument("--positions", default=d.positions, choices=["last", "all", "prefill"])
    p.add_argument("--n-dev", type=int, default=None, help="dev prompts for alpha selection (default: all)")
    p.add_argument("--n-test", type=int, default=None, help="test prompts (default: all)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--out", default=d.out, help="output folder (resumes rollouts found there)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from roast_tl.demo import DemoConfig, run_demo

    config = DemoConfig(
        model=args.model, task=args.task, layers=args.layers, hook_site=args.hook_site,
        n_train=args.n_train, n_rollouts=args.n_rollouts, alphas=args.alphas,
        positions=args.positions, n_dev=args.n_dev, n_test=args.n_test, seed=args.seed,
        batch_size=args.batch_size, out=args.out, progress=not args.quiet,
    )
    results = run_demo(config)
    print()
    print(results["table"])
    timings = results["timings"]
    print("\ntimings (s): " + ", ".join(f"{k.removesuffix('_s')} {v:.1f}" for k, v in timings.items()))
    print(f"saved: vector {results['outputs']['vector']}, everything in {config.out}/ (results.json)")
    return 0


def add_eval_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("eval", help="greedy accuracy of the model on a task split, "
                              "unsteered or steered with a saved vector")
    p.add_argument("--model", default=None, help="local HF folder or .gguf (default: embedded model)")
    p.add_argument("--task", default="sentiment", help="sentiment, gsm8k, arithmetic, multiple_choice")
    p.add_argument("--task-path", default=None, help="JSONL file for the task (multiple_choice needs one)")
    p.add_argument("--split", default="test", choices=["train", "dev", "test"])
    p.add_argument("--vector", default=None, help="a saved .safetensors steering vector")
    p.add_argument("--alpha", type=float, default=0.0)
    p.add_argument("--positions", default="last", choices=["last", "all", "prefill"])
    p.add_argument("--mode", default="add", choices=["add", "multiply"])
    p.add_argument("--few-shot", type=int, default=0, help="prepend k worked examples")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--records", default=None, help="write per-item records to this JSONL file")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_run_eval)


def _task_from_args(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from roast_tl.tasks import load_task

    return load_task(args.task, path=args.task_path) if args.task_path else load_task(args.task)


def _run_eval(args: argparse.Namespace) -> int:
    from roast_tl.baselines import few_shot_prefix
    from roast_tl.evaluate import evaluate
    from roast_tl.models import load_model
    from roast_tl.vector import SteeringVector

    model = load_model(args.model)
    task = _task_from_args(args)
    vector = SteeringVector.load(args.vector, model) if args.vector else None
    result = evaluate(
        model, task, vector, args.alpha, split=args.split, positions=args.positions, mode=args.mode,
        prompt_prefix=few_shot_prefix(task, args.few_shot) if args.few_shot else "",
        limit=args.limit, batch_size=args.batch_size, records_path=args.records,
        progress=not args.quiet,
    )
    print(f"{task.name}/{args.split}: accuracy {result.accuracy:.3f} "
          f"(95% CI [{result.ci_low:.3f}, {result.ci_high:.3f}], n={result.n})")
    if args.records:
        print(f"records: {args.records}")
    return 0


def add_sweep_parser(subparsers: argparse._SubParsersAction) -> None:
    from roast_tl.baselines import METHODS

    p = subparsers.add_parser("sweep", help="compare steering methods: alpha tuned on dev, test "
                              "accuracy mean ± std over seeds; writes CSV, JSON, Markdown and a plot")
    p.add_argument("--model", default=None)
    p.add_argument("--task", default="sentiment")
    p.add_argument("--task-path", default=None)
    p.add_argument("--methods", default="none,few_shot,caa,sadi,roast_plain,roast",
                   help=f"comma-separated, from {sorted(METHODS)}")
    p.add_argument("--layers", type=_ints, default=[10])
    p.add_argument("--seeds", type=_ints, default=[42, 22, 52])
    p.add_argument("--n-train", type=int, default=64)
    p.add_argument("--n-rollouts", type=int, default=8)
    p.add_argument("--n-dev", type=int, default=None)
    p.add_argument("--n-test", type=int, default=None)
    p.add_argument("--max-new-tokens", type=int, default=None)
    p.add_argument("--alphas", type=_floats, default=None, help="alpha grid for additive vectors")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--out", default="roast_runs/sweep", help="output folder (resumes cells found there)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_run_sweep)


def _run_sweep(args: argparse.Namespace) -> int:
    from roast_tl.models import load_model
    from roast_tl.sweep import markdown_table, run_sweep, summarize

    model = load_model(args.model)
    task = _task_from_args(args)
    rows = run_sweep(
        model, task, [m for m in args.methods.split(",") if m], layers=args.layers,
        out_dir=args.out, seeds=args.seeds, n_train=args.n_train, n_rollouts=args.n_rollouts,
        n_dev=args.n_dev, n_test=args.n_test, max_new_tokens=args.max_new_tokens,
        alphas={"add": args.alphas} if args.alphas else None, batch_size=args.batch_size,
        progress=not args.quiet,
    )
    print(markdown_table(summarize(rows)))
    print(f"written: {args.out}/rows.csv, summary.json, summary.md, dev_accuracy_vs_alpha.png")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="roast-tl", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
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
