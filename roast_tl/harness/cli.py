"""Command line: `roast-tl demo` (the main job), `roast-tl estimate`, `roast-tl eval`,
`roast-tl sweep`.

Every subcommand takes your own task: `--task jsonl --task-path F --grader NAME` (rows
`{"prompt": ..., "answer": ...}`, other field names with `--prompt-field` / `--answer-field`),
and `--chat` / `--no-chat` (default: the chat template when the tokenizer has one).

`python -m roast_tl ...` works too. This is the one place that maps names to strategies
(`SCALERS`); the library itself takes callables.

Every flag is checked before the model loads: counts are positive integers, alphas finite,
lists non-empty without repeats, output paths writable. A mistake prints one line,
`roast-tl <command>: error: ...`, and exits with status 2. Negative values may follow their
flag (`--alphas -4,8`) or be joined to it (`--alphas=-4,8`).
"""

import argparse
import math
import os
import re
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, get_args

from roast_tl._types import Backend, HookedModel, Positions, ReadAt, Scaler, SteeringMode
from roast_tl.scaling import l2_normalize, max_norm, softmax_scale
from roast_tl.tasks.base import SPLITS, Task

if TYPE_CHECKING:
    from roast_tl.harness.baselines import SteeringSetup
    from roast_tl.vector import SteeringVector

SCALERS: dict[str, Scaler] = {f.__name__: f for f in (max_norm, l2_normalize, softmax_scale)}
"""Continuous Soft Scaling functions by name, for `--scaler`."""

T = TypeVar("T")

_NUMBER_LIKE = re.compile(r"-(\d|\.\d|inf|nan)", re.IGNORECASE)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line and whose number flags take negative values.

    argparse reads `--alphas -4,8` as a flag `-4,8`; this parser joins a number-looking value to
    the number flag before it (`--alphas=-4,8`), for every flag added with a `type`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._typed_flags: set[str] = set()

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        if action.option_strings and action.type is not None and action.nargs is None:
            self._typed_flags.update(action.option_strings)
        return action

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        strings = list(sys.argv[1:] if args is None else args)
        joined: list[str] = []
        for text in strings:
            if joined and joined[-1] in self._typed_flags and _NUMBER_LIKE.match(text):
                joined[-1] = f"{joined[-1]}={text}"
            else:
                joined.append(text)
        return super().parse_known_args(joined, namespace)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _fail(message: str) -> NoReturn:
    raise argparse.ArgumentTypeError(message)


def _integer(minimum: int | None) -> Callable[[str], int]:
    """An argparse type: an integer, at least `minimum` when given."""
    wanted = {None: "an integer", 0: "an integer >= 0", 1: "a positive integer"}.get(
        minimum, f"an integer >= {minimum}"
    )

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            _fail(f"must be {wanted}, got {text!r}")
        if minimum is not None and value < minimum:
            _fail(f"must be {wanted}, got {text!r}")
        return value

    return parse


_positive_int = _integer(1)
_non_negative_int = _integer(0)
_int = _integer(None)


def _finite(text: str) -> float:
    """An argparse type: a finite float (no nan or inf)."""
    try:
        value = float(text.strip())
    except ValueError:
        _fail(f"must be a number, got {text!r}")
    if not math.isfinite(value):
        _fail(f"must be a finite number, got {text!r}")
    return value


def _list_of(parse_one: Callable[[str], T], noun: str) -> Callable[[str], list[T]]:
    """An argparse type: a comma-separated, non-empty list without repeats, in the given order."""

    def parse(text: str) -> list[T]:
        parts = [part for part in text.split(",") if part.strip()]
        if not parts:
            _fail(f"is empty; give at least one {noun}")
        values = [parse_one(part) for part in parts]
        for i, value in enumerate(values):
            if value in values[:i]:
                _fail(f"{text!r} repeats {parts[i].strip()}; give each {noun} once")
        return values

    return parse


_layers = _list_of(_non_negative_int, "layer")
_alphas = _list_of(_finite, "alpha")
_seeds = _list_of(_int, "seed")


def _layer_sets(text: str) -> list[list[int]]:
    """An argparse type: ';'-separated layer sets, each a `--layers` list; no set twice."""
    groups = [group for group in text.split(";") if group.strip()]
    if not groups:
        _fail("is empty; give at least one layer set, e.g. '6;10;6,10'")
    sets = [_layers(group) for group in groups]
    seen: set[frozenset[int]] = set()
    for group, layer_set in zip(groups, sets, strict=True):
        if frozenset(layer_set) in seen:
            _fail(f"{text!r} repeats the layer set {group.strip()}; give each set once")
        seen.add(frozenset(layer_set))
    return sets


def _method(text: str) -> str:
    """An argparse type: a name from the method registry (`harness/baselines.py: METHODS`)."""
    from roast_tl.harness.baselines import METHODS

    name = text.strip()
    if name not in METHODS:
        _fail(f"unknown method {name!r}; choose one of {sorted(METHODS)}")
    return name


_methods = _list_of(_method, "method")


def check_writable(flag: str, path: str | os.PathLike[str], *, folder: bool = False) -> None:
    """Raise a ValueError naming `flag` and `path` unless the run will be able to write there.

    `folder`: `path` is an output folder (it may exist; it must not be a file), else an output
    file (it must not be a folder). Folders missing on the way are fine (the run creates them);
    the nearest one that exists must be a folder we can create a file in (tried for real, since
    root ignores permission bits).
    """
    target = Path(path)
    if folder and target.exists() and not target.is_dir():
        raise ValueError(f"{flag} {path} is an existing file, not a folder; pick another {flag}")
    if not folder and target.is_dir():
        raise ValueError(f"{flag} {path} is a folder; give a file path")
    if not folder and target.exists() and not os.access(target, os.W_OK):
        raise ValueError(f"{flag} {path} is read-only; make it writable or pick another {flag}")
    existing = target if folder else target.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"{flag} {path}: {existing} is a file, not a folder; pick another {flag}")
    try:
        fd, probe = tempfile.mkstemp(prefix=".roast_tl_probe_", dir=existing)
    except OSError as err:
        raise ValueError(
            f"{flag} {path}: cannot write in {existing} ({err.strerror or err}); "
            f"pick another {flag}"
        ) from err
    os.close(fd)
    os.remove(probe)


def _add_common(p: argparse.ArgumentParser, *, layers: list[int], steers: bool = True) -> None:
    """Flags every subcommand shares, spelled as the library's keywords (`steers`: with
    `--positions`, where a vector is applied)."""
    from roast_tl.tasks import GRADERS

    p.add_argument(
        "--model",
        default=None,
        help="local HF folder or .gguf (default: embedded SmolLM2-135M-Instruct)",
    )
    p.add_argument(
        "--backend",
        default=None,
        choices=get_args(Backend),
        help="TransformerBridge (transformer-lens 4.3) or HookedTransformer (3.x); "
        "default: the installed TransformerLens's",
    )
    p.add_argument(
        "--task",
        default="sentiment",
        help="sentiment, gsm8k, arithmetic, multiple_choice (needs --task-path), or jsonl: "
        'your own {"prompt", "answer"} rows (needs --task-path; see --grader)',
    )
    p.add_argument("--task-path", default=None, help="JSONL file for the task")
    p.add_argument(
        "--grader",
        default=None,
        help=f"--task jsonl: how answers are graded, one of {', '.join(sorted(GRADERS))} or "
        "regex:PATTERN (default: exact)",
    )
    p.add_argument(
        "--prompt-field",
        default=None,
        help="--task jsonl: the rows' prompt field (default: prompt)",
    )
    p.add_argument(
        "--answer-field",
        default=None,
        help="--task jsonl: the rows' answer field (default: answer)",
    )
    p.add_argument(
        "--chat",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="apply the tokenizer's chat template to prompts; --no-chat feeds them as plain "
        "text, as a base model sees them (default: the template when the tokenizer has one)",
    )
    p.add_argument(
        "--layers",
        type=_layers,
        default=layers,
        help=f"comma-separated block indices, e.g. 8,10 (default: {','.join(map(str, layers))})",
    )
    p.add_argument("--site", default="resid_post", help="resid_post, mlp_post, ...")
    if steers:
        p.add_argument(
            "--positions",
            default="last",
            choices=get_args(Positions),
            help="where the vector is applied",
        )
    p.add_argument(
        "--n-rollouts", type=_positive_int, default=8, help="rollouts per training prompt"
    )
    p.add_argument(
        "--batch-size",
        type=_positive_int,
        default=32,
        help="sequences per sampling batch (default: 32)",
    )
    p.add_argument(
        "--threads",
        type=_positive_int,
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
    p.add_argument(
        "--n-train", type=_positive_int, default=d.n_train, help="training prompts to roll out"
    )
    p.add_argument(
        "--scaler",
        default="max_norm",
        choices=sorted(SCALERS),
        help="Continuous Soft Scaling of the vector (default: max_norm)",
    )
    p.add_argument(
        "--alphas",
        type=_alphas,
        default=d.alphas,
        help="alpha grid tried on the dev split, comma-separated, e.g. 4,8 or -4,8",
    )
    p.add_argument(
        "--max-dev",
        type=_positive_int,
        default=None,
        help="dev prompts for alpha selection (default: all)",
    )
    p.add_argument(
        "--max-test", type=_positive_int, default=None, help="test prompts (default: all)"
    )
    p.add_argument("--seed", type=_int, default=d.seed, help=f"the run's seed (default: {d.seed})")
    p.add_argument("--out", default=d.out, help="output folder (resumes rollouts found there)")
    p.set_defaults(func=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from roast_tl.harness.demo import DemoConfig, run_demo

    check_writable("--out", args.out, folder=True)
    _task_from_args(args)  # a bad --task or --task-path fails here, before the model loads
    _set_threads(args)
    config = DemoConfig(
        model=args.model,
        backend=args.backend,
        task=args.task,
        task_path=args.task_path,
        task_options=_task_options(args),
        chat=args.chat,
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
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)


def add_eval_parser(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = subparsers.add_parser(
        "eval",
        help="greedy accuracy on a task split: unsteered, steered "
        "with a saved vector, or with a method built on the fly (--method)",
    )
    _add_common(p, layers=[10])
    p.add_argument(
        "--split", default="test", choices=SPLITS, help="the split to evaluate (default: test)"
    )
    p.add_argument(
        "--max-items",
        type=_positive_int,
        default=None,
        help="evaluate only the first N items of the split",
    )
    source = p.add_mutually_exclusive_group()
    source.add_argument("--vector", default=None, help="a saved .safetensors steering vector")
    source.add_argument(
        "--method",
        type=_method,
        default=None,
        help="build a method first: none, few_shot, caa, sadi, roast, ...",
    )
    p.add_argument(
        "--allow-other-model",
        action="store_true",
        help="steer with a --vector whose metadata names another model (same widths needed)",
    )
    p.add_argument(
        "--alpha",
        type=_finite,
        default=None,
        help="steering strength (needed to steer; a negative one works: --alpha -4)",
    )
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
    p.add_argument(
        "--few-shot", type=_non_negative_int, default=0, help="prepend k worked examples"
    )
    p.add_argument(
        "--n-train", type=_positive_int, default=64, help="training prompts for --method"
    )
    p.add_argument("--rollouts-path", default=None, help="JSONL to cache/resume ROAST rollouts")
    p.add_argument(
        "--seed", type=_int, default=42, help="seed of the --method's training draw (default: 42)"
    )
    p.add_argument("--save-vector", default=None, help="save the --method vector here")
    p.add_argument("--records", default=None, help="write per-item records to this JSONL file")
    p.set_defaults(func=_run_eval)


_JSONL_ONLY = {
    "--grader": "grader",
    "--prompt-field": "prompt_field",
    "--answer-field": "answer_field",
}


def _task_options(args: argparse.Namespace) -> dict[str, Any]:
    """The task loader's keyword arguments beyond `path` (`--grader` and the field names of
    `--task jsonl`); a jsonl-only flag with another task is a ValueError."""
    given = {flag: getattr(args, dest) for flag, dest in _JSONL_ONLY.items()}
    given = {flag: value for flag, value in given.items() if value is not None}
    if args.task != "jsonl":
        if given:
            raise ValueError(
                f"{', '.join(given)} applies to --task jsonl (your own rows); --task "
                f"{args.task} has its own grader and fields"
            )
        return {}
    return {_JSONL_ONLY[flag]: value for flag, value in given.items()}


def _task_from_args(args: argparse.Namespace) -> Task:
    from roast_tl.tasks import load_task

    if args.task in ("multiple_choice", "jsonl") and not args.task_path:
        rows = {
            "multiple_choice": '{"question", "choices", "answer"} rows',
            "jsonl": '{"prompt", "answer"} rows (other names: --prompt-field, --answer-field)',
        }[args.task]
        raise ValueError(
            f"--task {args.task} has no shipped data; give --task-path FILE, a JSONL file of {rows}"
        )
    options = _task_options(args)
    if args.task_path:
        return load_task(args.task, path=args.task_path, **options)
    return load_task(args.task, **options)


def _check_eval_args(args: argparse.Namespace) -> "SteeringVector | None":
    """Check what `eval` can check without the model; return the --vector file's vector."""
    from roast_tl.harness.baselines import method_named
    from roast_tl.vector import SteeringVector

    steers = bool(args.vector) or bool(args.method and method_named(args.method).alpha_grid)
    if steers and args.alpha is None:
        raise ValueError(
            "steering needs --alpha; tune it on dev with `roast-tl sweep` "
            "(SmolLM2's residual stream wants alphas of order 4-32 with max_norm "
            "vectors)"
        )
    if not steers and args.alpha is not None:
        raise ValueError(
            f"--alpha {args.alpha:g} steers nothing: give --vector or a steering --method"
        )
    if args.allow_other_model and not args.vector:
        raise ValueError("--allow-other-model applies to a --vector file; give --vector")
    if args.save_vector is not None:
        if not (args.method and method_named(args.method).alpha_grid):
            raise ValueError("--save-vector needs a steering --method (caa, sadi, roast, ...)")
        check_writable("--save-vector", args.save_vector)
    if args.records is not None:
        check_writable("--records", args.records)
    if args.rollouts_path is not None:
        check_writable("--rollouts-path", args.rollouts_path)
    if not args.vector:
        return None
    return SteeringVector.load(args.vector, allow_other_model=args.allow_other_model)


def _setup_from_args(
    args: argparse.Namespace,
    model: HookedModel,
    task: Task,
    vector: "SteeringVector | None",
) -> "SteeringSetup":
    from roast_tl.harness.baselines import (
        MethodContext,
        SteeringSetup,
        build_method,
        few_shot_prefix,
        method_named,
    )
    from roast_tl.harness.sweep import train_subset
    from roast_tl.rollouts import sample_rollouts

    prefix = few_shot_prefix(task, args.few_shot) if args.few_shot else ""
    if vector is not None:
        vector.check_model(model)  # --allow-other-model is remembered by the vector
        return SteeringSetup("vector", vector, prompt_prefix=prefix)
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
            chat=args.chat,
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
        chat=args.chat,
    )
    setup = build_method(args.method, ctx)
    setup.prompt_prefix = prefix + setup.prompt_prefix
    if args.save_vector and setup.vector is not None:
        print(f"saved vector: {setup.vector.save(args.save_vector)}")
    return setup


def _run_eval(args: argparse.Namespace) -> int:
    from roast_tl.evaluate import evaluate
    from roast_tl.models import load_model

    vector = _check_eval_args(args)
    task = _task_from_args(args)
    _set_threads(args)
    model = load_model(args.model, backend=args.backend)
    setup = _setup_from_args(args, model, task, vector)
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
        allow_other_model=args.allow_other_model,
        progress=not args.quiet,
        chat=args.chat,
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
        type=_methods,
        default=["none", "few_shot", "caa", "sadi", "roast_plain", "roast"],
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
    p.add_argument(
        "--seeds",
        type=_seeds,
        default=[42, 22, 52],
        help="comma-separated seeds, one training draw each (default: 42,22,52)",
    )
    p.add_argument("--n-train", type=_positive_int, default=64, help="training prompts per seed")
    p.add_argument(
        "--max-dev", type=_positive_int, default=None, help="cap on dev items (default: all)"
    )
    p.add_argument(
        "--max-test", type=_positive_int, default=None, help="cap on test items (default: all)"
    )
    p.add_argument(
        "--max-new-tokens",
        type=_positive_int,
        default=None,
        help="tokens generated per completion (default: the task's own)",
    )
    p.add_argument(
        "--alphas",
        type=_alphas,
        default=None,
        help="alpha grid for additive methods, e.g. 4,8 or -4,8 (default: each method's own)",
    )
    p.add_argument(
        "--multiply-alphas",
        type=_alphas,
        default=None,
        help="alpha grid for SADI / multiply, e.g. 0.5,1,2",
    )
    p.add_argument(
        "--out", default="roast_runs/sweep", help="output folder (resumes cells found there)"
    )
    p.set_defaults(func=_run_sweep)


def _run_sweep(args: argparse.Namespace) -> int:
    from roast_tl.harness.sweep import markdown_table, run_sweep, summarize
    from roast_tl.models import load_model

    check_writable("--out", args.out, folder=True)
    task = _task_from_args(args)
    _set_threads(args)
    model = load_model(args.model, backend=args.backend)
    alphas: dict[SteeringMode, list[float]] = {}
    if args.alphas:
        alphas["add"] = args.alphas
    if args.multiply_alphas:
        alphas["multiply"] = args.multiply_alphas
    rows = run_sweep(
        model,
        task,
        args.methods,
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
        chat=args.chat,
    )
    print(markdown_table(summarize(rows)))
    print(f"written: {args.out}/rows.csv, summary.json, summary.md, dev_accuracy_vs_alpha.png")
    return 0


def add_estimate_parser(
    subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]",
) -> None:
    p = subparsers.add_parser(
        "estimate",
        help="estimate a ROAST vector for a task (rollouts, contrast, vector), print its yield "
        "report and save it; no evaluation",
    )
    _add_common(p, layers=[10], steers=False)
    p.add_argument(
        "--n-train",
        type=_positive_int,
        default=64,
        help="training prompts to roll out, a seeded draw from the train split (default: 64)",
    )
    p.add_argument(
        "--seed",
        type=_int,
        default=0,
        help="seed of the training draw and the rollouts (default: 0)",
    )
    p.add_argument(
        "--scaler",
        default="max_norm",
        choices=sorted(SCALERS),
        help="Continuous Soft Scaling of the vector (default: max_norm)",
    )
    p.add_argument(
        "--read-at",
        default="last",
        choices=get_args(ReadAt),
        help="where activations are read (default: last)",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="use only prompts with both a correct and a wrong rollout (no fallbacks)",
    )
    p.add_argument("--rollouts-path", default=None, help="JSONL to cache/resume the rollouts")
    p.add_argument(
        "--save-vector",
        default="roast_runs/estimate/vector.safetensors",
        help="where the vector is saved (default: roast_runs/estimate/vector.safetensors)",
    )
    p.set_defaults(func=_run_estimate)


def _run_estimate(args: argparse.Namespace) -> int:
    from roast_tl.estimate import estimate
    from roast_tl.harness.sweep import train_subset
    from roast_tl.models import load_model
    from roast_tl.report import YieldReport

    check_writable("--save-vector", args.save_vector)
    if args.rollouts_path is not None:
        check_writable("--rollouts-path", args.rollouts_path)
    task = _task_from_args(args)
    items = train_subset(task, args.n_train, args.seed)
    _set_threads(args)
    model = load_model(args.model, backend=args.backend)
    vector = estimate(
        model,
        task,
        items=items,
        layers=args.layers,
        site=args.site,
        n_rollouts=args.n_rollouts,
        read_at=args.read_at,
        scaler=SCALERS[args.scaler],
        strict=args.strict,
        seed=args.seed,
        batch_size=args.batch_size,
        rollouts_path=args.rollouts_path,
        progress=not args.quiet,
        chat=args.chat,
    )
    if args.quiet:  # estimate prints the yield report only with progress
        print(YieldReport.from_dict(vector.metadata["yield_report"]))
    path = vector.save(args.save_vector)
    print(f"saved vector: {path} (hooks {', '.join(vector.hook_names)})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = _Parser(
        prog="roast-tl", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    subparsers = parser.add_subparsers(dest="command", required=True, help="the job to run")
    add_demo_parser(subparsers)
    add_estimate_parser(subparsers)
    add_eval_parser(subparsers)
    add_sweep_parser(subparsers)
    return parser


def _message(err: BaseException) -> str:
    """One line for a user error; an OSError names its path."""
    if isinstance(err, OSError) and err.strerror and err.filename is not None:
        also = f" -> {err.filename2}" if err.filename2 is not None else ""
        return f"{err.strerror}: {err.filename}{also}"
    return str(err) or type(err).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run `roast-tl` with `argv` (default: sys.argv); return the exit status (2: user error)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help (0) or a bad flag (2, message already printed)
        return exit_.code if isinstance(exit_.code, int) else 0
    try:
        return int(args.func(args))
    except (OSError, TypeError, ValueError, ImportError) as err:
        print(f"roast-tl {args.command}: error: {_message(err)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
