"""ROAST rollout workloads: roast_tl's sampler vs HF `generate(num_return_sequences=8)`.

P prompts x 8 samples (rows = 8P), temperature 0.8, top_p 0.9, the same prompts and settings on
both sides, stop tokens off so both make exactly `new_tokens` per row. roast_tl samples through
`generate_tokens` (one seeded generator per row, each distinct prompt prefilled once, the
unhooked fast path); HF runs `generate` on an unwrapped copy of the model (its default SDPA
attention), as an HF user would. Two workloads, with real task prompts:

- sentiment: the sentiment task's chat prompts (~59 tokens), 8 new tokens (prefill-bound);
- gsm8k: GSM8K chat prompts of at least 130 tokens (~150), 256 new tokens (decode-bound); a
  run may cap its new tokens (`new_tokens` is recorded in every row).
"""

import statistics
from collections.abc import Sequence
from typing import Any

import torch
from _harness import interleaved, median_ratio, peak_rss_growth
from _workload import hf_sample, left_pad, sample_rollout_batch

import roast_tl

SAMPLES = 8  # rollouts per prompt, as ROAST samples them
WORKLOADS = {"sentiment": (0, 8), "gsm8k": (130, 256)}  # name: (min prompt tokens, new tokens)


def task_prompts(model: Any, workload: str, n: int) -> list[list[int]]:
    """`n` train prompts of the workload's task, tokenized as roast_tl feeds them (chat
    template): the first of at least its minimum length (else the longest of the first 500),
    cycled when there are fewer."""
    tokenizer = model.tokenizer
    task = roast_tl.load_task(workload)
    shortest = WORKLOADS[workload][0]
    encoded = []
    for item in task.items("train")[:500]:
        text = item.prompt
        if getattr(tokenizer, "chat_template", None):
            messages = [{"role": "user", "content": text}]
            text = tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
        encoded.append(list(tokenizer(text, add_special_tokens=False)["input_ids"]))
    chosen = [ids for ids in encoded if len(ids) >= shortest][:n]
    if not chosen:  # a small tokenizer or context: the longest there are
        chosen = sorted(encoded, key=len, reverse=True)[:n]
    return [chosen[i % len(chosen)] for i in range(n)]


def ours(model: Any, prompts: list[list[int]], new_tokens: int) -> list[list[int]]:
    """roast_tl's sampler on the workload: 8 rows per prompt, one seeded generator per row."""
    return sample_rollout_batch(model, [p for p in prompts for _ in range(SAMPLES)], new_tokens)


def hf(hf_model: Any, tokenizer: Any, prompts: list[list[int]], new_tokens: int) -> torch.Tensor:
    """HF `generate(num_return_sequences=8)` on the same prompts and settings."""
    ids, mask = left_pad(tokenizer, prompts)
    out = hf_sample(
        hf_model,
        ids,
        mask,
        pad_token_id=tokenizer.pad_token_id,
        new_tokens=new_tokens,
        num_return_sequences=SAMPLES,
    )
    return out[:, ids.shape[1] :]


def measure(
    model: Any,
    hf_model: Any,
    *,
    rows: Sequence[int],
    new_tokens: dict[str, int],
    rounds: dict[str, int],
) -> dict[str, Any]:
    """Per workload, one entry per row count: both times, tok/s and `ratio_vs_hf` (HF time /
    roast_tl time, the median of interleaved rounds); plus one peak-RSS run of each side at the
    largest row count of the decode-bound workload."""
    results: dict[str, Any] = {}
    for workload in WORKLOADS:
        tokens = new_tokens[workload]
        entries = []
        for n_rows in rows:
            prompts = task_prompts(model, workload, max(1, n_rows // SAMPLES))

            def run_ours(prompts: list[list[int]] = prompts, tokens: int = tokens) -> None:
                made = ours(model, prompts, tokens)
                assert all(len(t) == tokens for t in made)

            def run_hf(prompts: list[list[int]] = prompts, tokens: int = tokens) -> None:
                made = hf(hf_model, model.tokenizer, prompts, tokens)
                assert made.shape == (len(prompts) * SAMPLES, tokens)

            times = interleaved({"roast_tl": run_ours, "hf": run_hf}, rounds[workload])
            produced = len(prompts) * SAMPLES * tokens
            entry = {
                "rows": len(prompts) * SAMPLES,
                "prompts": len(prompts),
                "prompt_tokens_mean": statistics.mean(len(p) for p in prompts),
                "new_tokens": tokens,
                "rounds": rounds[workload],
                "roast_tl_s": statistics.median(times["roast_tl"]),
                "hf_s": statistics.median(times["hf"]),
                "roast_tl_tok_s": produced / statistics.median(times["roast_tl"]),
                "hf_tok_s": produced / statistics.median(times["hf"]),
                "ratio_vs_hf": median_ratio(times["hf"], times["roast_tl"]),
            }
            entries.append(entry)
            print(f"  {workload}, {entry['rows']} rows: {entry['ratio_vs_hf']:.2f}x HF", flush=True)
        results[workload] = entries
    prompts = task_prompts(model, "gsm8k", max(1, max(rows) // SAMPLES))
    tokens = new_tokens["gsm8k"]
    results["peak_rss"] = {
        "workload": f"gsm8k, {len(prompts) * SAMPLES} rows, {tokens} new tokens",
        "roast_tl": peak_rss_growth(lambda: ours(model, prompts, tokens)),
        "hf": peak_rss_growth(lambda: hf(hf_model, model.tokenizer, prompts, tokens)),
    }
    return results


def table_rows(r: dict[str, Any], targets: dict[str, float]) -> list[list[str]]:
    out = []
    for workload in WORKLOADS:
        target = targets[f"{workload}_vs_hf"]
        for e in r[workload]:
            out.append(
                [
                    f"{workload} rollouts, {e['rows']} rows ({e['prompts']} prompts x 8, "
                    f"~{e['prompt_tokens_mean']:.0f} prompt tok, {e['new_tokens']} new), tok/s",
                    f"{e['roast_tl_tok_s']:.1f}",
                    f"HF generate(num_return_sequences=8) {e['hf_tok_s']:.1f}",
                    f"{e['ratio_vs_hf']:.2f}x HF",
                    f">= {target:g}x: {'met' if e['ratio_vs_hf'] >= target else 'missed'}",
                ]
            )
    rss = r["peak_rss"]
    out.append(
        [
            f"peak RSS growth, {rss['workload']}, MB",
            f"{rss['roast_tl']['delta_mb']:.0f}",
            f"HF {rss['hf']['delta_mb']:.0f}",
            "",
            "",
        ]
    )
    return out
