"""Steering overhead: roast_tl sampling inside `roast_tl.steer(...)` vs the same without it.

Unsteered sampling takes the unhooked fast path; steered sampling cannot (the hooks must fire),
so `ratio` includes the fast path's gain. `ratio_vs_hooked` compares steered sampling with
unsteered sampling forced onto the hooked path (a hook that changes nothing attached): the
cost of the steering hooks themselves."""

import statistics
from typing import Any

import torch
from _harness import interleaved, median_ratio
from _workload import on_hooked_path, prompt_ids, sample_rollout_batch

import roast_tl
from roast_tl.scaling import max_norm
from roast_tl.sites import hook_name, model_name


def measure(
    model: Any, *, batch: int, new_tokens: int, rounds: int, target: float
) -> dict[str, Any]:
    """`met` when steered sampling makes >= `target` x the unsteered tokens per second."""
    name = hook_name("resid_post", model.cfg.n_layers // 3)
    gen = torch.Generator().manual_seed(0)
    direction = max_norm(torch.randn(model.cfg.d_model, generator=gen))
    vector = roast_tl.SteeringVector({name: direction}, {"model_name": model_name(model)})
    prompts = prompt_ids(model.tokenizer, batch)

    def unsteered() -> None:
        sample_rollout_batch(model, prompts, new_tokens)

    def steered() -> None:
        with roast_tl.steer(model, vector, 1.0):
            unsteered()

    def hooked_unsteered() -> None:
        with on_hooked_path(model, name):
            unsteered()

    times = interleaved(
        {"unsteered": unsteered, "steered": steered, "hooked": hooked_unsteered}, rounds
    )
    produced = batch * new_tokens
    ratio = median_ratio(times["unsteered"], times["steered"])
    return {
        "batch": batch,
        "new_tokens": new_tokens,
        "hook": name,
        "rounds": rounds,
        "unsteered_tok_s": produced / statistics.median(times["unsteered"]),
        "steered_tok_s": produced / statistics.median(times["steered"]),
        "hooked_unsteered_tok_s": produced / statistics.median(times["hooked"]),
        "ratio": ratio,
        "ratio_vs_hooked": median_ratio(times["hooked"], times["steered"]),
        "target": target,
        "met": ratio >= target,
    }


def table_rows(s: dict[str, Any]) -> list[list[str]]:
    return [
        [
            f"steered sampling, batch {s['batch']}, tok/s",
            f"{s['steered_tok_s']:.1f}",
            f"unsteered {s['unsteered_tok_s']:.1f} (fast path); "
            f"{s['hooked_unsteered_tok_s']:.1f} on the hooked path",
            f"{s['ratio']:.3f}x; {s['ratio_vs_hooked']:.3f}x vs hooked",
            f">= {s['target']:g}x: {'met' if s['met'] else 'missed'}",
        ]
    ]
