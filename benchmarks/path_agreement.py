"""How far the fast path (SDPA) is from the hooked bridge (eager), in logits and in tokens.

The fast path samples on the bridge's HF class with SDPA attention; the hooked path is the bridge
itself with its eager attention. Their logits differ in the last bits, so a sampled token can
differ where two candidates nearly tie. This measures, on the embedded model (or `--model`):

- the largest |logit difference| of a prefill over the benchmark prompts, absolute and relative
  to the largest logit;
- greedy decoding: rows whose tokens are identical on both paths;
- rollout sampling (T=0.8, top_p=0.9, per-row seeds): rows identical on both paths, and where the
  others first differ;
- the same, steered (`steer` at the middle layer's resid_post, alpha 4, positions "last").

    python benchmarks/path_agreement.py --threads 1 --rows 64 --new-tokens 64   # ~6 min
    python benchmarks/path_agreement.py --rows 8 --new-tokens 8   # a smoke run

Writes benchmarks/results/path_agreement.{json,md}.
"""

import argparse
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from _harness import load_bridge, machine, markdown_table, write_results
from _workload import on_hooked_path, prompt_ids

import roast_tl
from roast_tl._bridge import forward_step
from roast_tl._fast import FORWARD_FAST, fast_forward_step, fast_model, sampling_forward
from roast_tl._tokens import left_pad, position_ids_for
from roast_tl.generation import generate_tokens


def _first_difference(a: list[int], b: list[int]) -> int | None:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def _compare(model: Any, prompts: list[list[int]], new_tokens: int, sampled: bool) -> dict:
    def run() -> list[list[int]]:
        settings: dict[str, Any] = {}
        if sampled:
            gens = [torch.Generator().manual_seed(i) for i in range(len(prompts))]
            settings = {"temperature": 0.8, "top_p": 0.9, "generators": gens}
        out = generate_tokens(
            model, prompts, max_new_tokens=new_tokens, stop_token_ids=(), **settings
        )
        return out.tokens

    with sampling_forward(model) as (path, _):
        assert path == FORWARD_FAST, "this model has no fast path: nothing to compare"
    fast = run()
    with on_hooked_path(model):
        hooked = run()
    firsts = [_first_difference(a, b) for a, b in zip(fast, hooked, strict=True)]
    differing = [f for f in firsts if f is not None]
    return {
        "rows": len(prompts),
        "identical_rows": len(prompts) - len(differing),
        "first_difference_at": sorted(differing),
        "new_tokens": new_tokens,
    }


@torch.inference_mode()
def _logit_gap(model: Any, prompts: list[list[int]]) -> dict[str, float]:
    pad = model.tokenizer.pad_token_id or 0
    ids, mask = left_pad(prompts, pad)
    positions = position_ids_for(mask)
    ours, _ = fast_forward_step(fast_model(model), ids, mask, positions, use_cache=False)
    theirs, _ = forward_step(model, ids, mask, positions, use_cache=False)
    gap = float((ours - theirs).abs().max())
    return {
        "max_abs": gap,
        "max_logit": float(theirs.abs().max()),
        "relative": gap / float(theirs.abs().max()),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=None, help="HF folder or .gguf (default: embedded)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--rows", type=int, default=32, help="prompts (one row each)")
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--out", default="benchmarks/results/path_agreement.json")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    model = load_bridge(args.model)
    prompts = prompt_ids(model.tokenizer, args.rows)
    layer = model.cfg.n_layers // 2
    hook = f"blocks.{layer}.hook_resid_post"
    gen = torch.Generator().manual_seed(0)
    vector = roast_tl.SteeringVector.from_direction(
        hook, torch.randn(model.cfg.d_model, generator=gen), model=model
    )
    results: dict[str, Any] = {"logits": _logit_gap(model, prompts)}
    for steered in (False, True):
        context = roast_tl.steer(model, vector, 4.0) if steered else nullcontext()
        with context:
            for sampled in (False, True):
                name = (
                    f"{'steered' if steered else 'unsteered'}_{'sampled' if sampled else 'greedy'}"
                )
                results[name] = _compare(model, prompts, args.new_tokens, sampled)
    rows = [
        [
            "prefill logits, max abs(fast - hooked)",
            f"{results['logits']['max_abs']:.2e} ({results['logits']['relative']:.1e} of the "
            f"largest logit, {results['logits']['max_logit']:.1f})",
        ]
    ]
    for name, r in results.items():
        if name == "logits":
            continue
        where = ", ".join(map(str, r["first_difference_at"])) or "-"
        rows.append(
            [
                f"{name.replace('_', ' ')}: rows with identical tokens ({r['new_tokens']} new)",
                f"{r['identical_rows']}/{r['rows']} (others first differ at token {where})",
            ]
        )
    info = machine()
    header = (
        f"Fast path (SDPA) vs hooked bridge (eager) on {model.cfg.model_name}, {info['device']}, "
        f"{info['torch_threads']} torch threads; steering: {hook}, alpha 4, positions 'last'; "
        f"{time.perf_counter() - start:.0f} s."
    )
    table = markdown_table(["measurement", "result"], rows)
    print(header + "\n\n" + table)
    write_results(
        Path(args.out),
        {"meta": {"model": str(model.cfg.model_name), **info, "hook": hook}, **results},
        header + "\n\n" + table + "\n",
    )


if __name__ == "__main__":
    main()
