"""Rollout sampling throughput: roast_tl vs HF `generate`, unwrapped and on the bridge.

New tokens/s at T=0.8, top_p=0.9 with per-prompt generators (as `sample_rollouts` samples), stop
tokens off so every row makes the same count. HF runs twice: on an unwrapped copy of the model
(what HF users get) and on the bridge's own HF module (same hooks as roast_tl: the loop's cost).
"""

import statistics
from collections.abc import Sequence
from typing import Any

import torch
from _harness import interleaved, median_ratio
from _workload import hf_sample, left_pad, prompt_ids, sample_rollout_batch


def measure(
    model: Any, hf: Any, *, batches: Sequence[int], new_tokens: int, rounds: int, target: float
) -> list[dict[str, Any]]:
    """One row per batch size; `met` when roast_tl makes >= `target` x HF's tokens per second."""
    pad = model.tokenizer.pad_token_id  # `roast_tl.load_model` sets it (to EOS when missing)
    rows = []
    for batch in batches:
        prompts = prompt_ids(model.tokenizer, batch)
        ids, mask = left_pad(model.tokenizer, prompts)

        def ours(prompts: list[list[int]] = prompts) -> None:
            tokens = sample_rollout_batch(model, prompts, new_tokens)
            assert all(len(t) == new_tokens for t in tokens)

        def hf_generate(
            target_model: Any, ids: torch.Tensor = ids, mask: torch.Tensor = mask
        ) -> None:
            out = hf_sample(target_model, ids, mask, pad_token_id=pad, new_tokens=new_tokens)
            assert out.shape[1] - ids.shape[1] == new_tokens

        times = interleaved(
            {
                "roast_tl": ours,
                "hf": lambda: hf_generate(hf),
                "hf_wrapped": lambda: hf_generate(model.original_model),
            },
            rounds,
        )
        produced = new_tokens * batch
        row: dict[str, Any] = {
            "batch": batch,
            "new_tokens": new_tokens,
            "prompt_len": int(ids.shape[1]),
            "rounds": rounds,
        }
        for name, t in times.items():
            row[f"{name}_tok_s"] = produced / statistics.median(t)
        row["ratio_vs_hf"] = median_ratio(times["hf"], times["roast_tl"])
        row["ratio_vs_hf_wrapped"] = median_ratio(times["hf_wrapped"], times["roast_tl"])
        row["hf_wrapped_vs_hf"] = median_ratio(times["hf"], times["hf_wrapped"])
        row["target"] = target
        row["met"] = row["ratio_vs_hf"] >= target
        rows.append(row)
        print(f"  sampling, batch {batch}: {row['ratio_vs_hf']:.2f}x HF", flush=True)
    return rows


def table_rows(rows: Sequence[dict[str, Any]]) -> list[list[str]]:
    return [
        [
            f"sampling, batch {r['batch']} ({r['new_tokens']} new tok/row), tok/s",
            f"{r['roast_tl_tok_s']:.1f}",
            f"HF {r['hf_tok_s']:.1f}; HF on bridge {r['hf_wrapped_tok_s']:.1f}",
            f"{r['ratio_vs_hf']:.2f}x HF; {r['ratio_vs_hf_wrapped']:.2f}x HF on bridge",
            f">= {r['target']:g}x HF: {'met' if r['met'] else 'missed'}",
        ]
        for r in rows
    ]
