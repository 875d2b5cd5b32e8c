"""Decode roofline: fp32 weight bytes per decode step / measured copy bandwidth, next to the
measured batch-1 greedy decode speed of roast_tl's sampler (`generate_tokens`, unhooked: the
fast path, per-step sampling and bookkeeping included), of one bare step through the bridge's
HF module (every hook point live: the pass roast_tl made before the fast path), and of an
unwrapped copy of the HF model."""

import statistics
from collections.abc import Callable
from functools import partial
from typing import Any

import torch
from _harness import timed
from _workload import hf_forward, prompt_ids

from roast_tl.generation import generate_tokens

Step = Callable[[Any, torch.Tensor, torch.Tensor], tuple[Any, torch.Tensor]]


def bandwidth_gb_s(megabytes: int = 256, rounds: int = 7) -> float:
    """Memory bandwidth from a large tensor copy: (read + write bytes) / time, median of rounds."""
    src = torch.ones(megabytes * 2**20 // 4)
    dst = torch.empty_like(src)
    dst.copy_(src)
    times = [timed(lambda: dst.copy_(src))[0] for _ in range(rounds)]
    return 2 * src.numel() * 4 / statistics.median(times) / 1e9


def greedy_step(module: Any) -> Step:
    """One cached, greedy batch-1 decode step of `module`: (past, tokens, mask) -> (past, next)."""

    def step(past: Any, tokens: torch.Tensor, mask: torch.Tensor) -> tuple[Any, torch.Tensor]:
        out = hf_forward(module, tokens, mask, past=past, use_cache=True)
        return out.past_key_values, out.logits[:, -1].argmax(-1, keepdim=True)

    return step


def decode_step_seconds(step: Step, prompt: torch.Tensor, steps: int) -> float:
    """Median time of single-token cached decode steps after a prefill of `prompt`."""
    with torch.inference_mode():
        mask = torch.ones_like(prompt)
        past, token = step(None, prompt, mask)
        times = []
        for _ in range(steps):
            mask = torch.cat([mask, torch.ones_like(token)], dim=1)
            seconds, (past, token) = timed(partial(step, past, token, mask))
            times.append(seconds)
    return statistics.median(times)


def sampler_step_seconds(model: Any, prompt: list[int], steps: int) -> float:
    """Seconds per greedy decode step of roast_tl's sampler at batch 1: the time of
    `steps + 1` new tokens minus that of 1 (the prefill), over `steps`."""
    settings = {"stop_token_ids": ()}
    one, _ = timed(lambda: generate_tokens(model, [prompt], max_new_tokens=1, **settings))
    many, _ = timed(lambda: generate_tokens(model, [prompt], max_new_tokens=steps + 1, **settings))
    return max(many - one, 1e-9) / steps


def measure(model: Any, hf: Any, *, steps: int, rounds: int) -> dict[str, Any]:
    """Decode tokens/s of both, and the fraction of the weight-bandwidth bound each reaches."""
    unique = {id(p): p for p in model.original_model.parameters()}
    weight_bytes = sum(p.numel() * p.element_size() for p in unique.values())
    bandwidth = statistics.median(bandwidth_gb_s() for _ in range(3))
    bound = bandwidth * 1e9 / weight_bytes
    prompt = torch.tensor([prompt_ids(model.tokenizer, 1)[0]])
    hooked, theirs = greedy_step(model.original_model), greedy_step(hf)
    step_times: dict[str, list[float]] = {"roast_tl": [], "hooked": [], "hf": []}
    for _ in range(rounds):
        step_times["roast_tl"].append(sampler_step_seconds(model, prompt[0].tolist(), steps))
        step_times["hooked"].append(decode_step_seconds(hooked, prompt, steps))
        step_times["hf"].append(decode_step_seconds(theirs, prompt, steps))
    ours_tok_s = 1 / statistics.median(step_times["roast_tl"])
    hooked_tok_s = 1 / statistics.median(step_times["hooked"])
    hf_tok_s = 1 / statistics.median(step_times["hf"])
    print(f"  decode: {ours_tok_s:.1f} tok/s, bound {bound:.1f}", flush=True)
    return {
        "weight_bytes": weight_bytes,
        "bandwidth_gb_s": bandwidth,
        "bound_tok_s": bound,
        "decode_tok_s_roast_tl": ours_tok_s,
        "decode_tok_s_hooked_step": hooked_tok_s,
        "decode_tok_s_hf": hf_tok_s,
        "fraction_of_bound_roast_tl": ours_tok_s / bound,
        "fraction_of_bound_hooked_step": hooked_tok_s / bound,
        "fraction_of_bound_hf": hf_tok_s / bound,
    }


def table_rows(r: dict[str, Any]) -> list[list[str]]:
    return [
        [
            "batch-1 greedy decode, tok/s",
            f"{r['decode_tok_s_roast_tl']:.1f}",
            f"HF {r['decode_tok_s_hf']:.1f}; hooked step {r['decode_tok_s_hooked_step']:.1f}; "
            f"roofline {r['bound_tok_s']:.1f} "
            f"({r['weight_bytes'] / 1e6:.0f} MB / {r['bandwidth_gb_s']:.1f} GB/s)",
            f"{r['fraction_of_bound_roast_tl']:.2f} (HF {r['fraction_of_bound_hf']:.2f}) of bound",
            "",
        ]
    ]
