"""Command line: `roast-tl demo` (the main job); `python -m roast_tl` works too."""

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="roast-tl", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_demo_parser(subparsers)
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
