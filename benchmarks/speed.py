"""Speed of roast_tl against HF transformers on the embedded model (or `--model PATH`).

1. Rollout sampling throughput (new tokens/s, T=0.8, top_p=0.9, per-prompt generators, as
   `sample_rollouts` samples): roast_tl vs HF `generate` on an unwrapped copy of the HF model and
   on the bridge-wrapped one, batches 1, 8, 32, stop tokens off so every row makes the same count.
2. Steered vs unsteered roast_tl sampling.
3. Activation capture for the estimate step (`contrast_means`) vs a plain full forward over the
   same tokens, its time against layer depth, and peak memory growth for 100 vs 1,000 rollouts
   (each in a fresh subprocess; the kernel's peak-RSS mark is reset after the model load), next
   to a control that keeps every activation (it must grow, or the measurement sees nothing).
4. Decode roofline: fp32 weight bytes per decode step / measured copy bandwidth, next to the
   measured single-sequence decode speed.

Compared variants run interleaved (A, B, C, A, B, C, ...) and ratios are medians of the ratios
of each round, so drift in a shared machine's load hits both sides alike.

    python benchmarks/speed.py                 # about 10-15 min on 2 cores
    python benchmarks/speed.py --quick         # about 2 min (sizes shrink, same code paths)
    python benchmarks/speed.py --model ~/models/Qwen3-0.6B --out /tmp/qwen_speed.json
"""

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

PROMPTS = [
    "Write a short story about a lighthouse keeper who finds a message in a bottle.",
    "Explain how photosynthesis works.",
    "What is 17 times 23? Show your work.",
    "Describe the city of Paris in spring.",
    "Give me three tips for learning a new language.",
    "Why is the sky blue?",
    "Summarize the plot of a detective novel you invent.",
    "List the planets of the solar system and one fact about each.",
    "How do I bake bread at home?",
    "Is this review positive or negative? 'The food was cold and the waiter was rude.'",
    "Translate 'good morning, how are you?' into French and explain the grammar.",
    "What are the benefits of regular exercise?",
    "Tom has 3 boxes with 12 apples each and eats 5. How many are left?",
    "Write a poem about the ocean.",
    "Explain what a neural network is to a child.",
    "What happened in the year 1969?",
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes (about 2 minutes)")
    parser.add_argument("--out", default="benchmarks/results/speed.json")
    parser.add_argument("--model", default=None, help="local HF folder or .gguf (default: embedded)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--memory-child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--memory-layer", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--memory-mode", default="contrast_means", choices=["contrast_means", "keep_all"],
                        help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def load(model_arg: str | None) -> tuple[Any, Any]:
    """Return (bridge, unwrapped HF model): two models with the same weights, one never wrapped."""
    import roast_tl
    from roast_tl import models

    model = roast_tl.load_model(model_arg)
    if model_arg is None or str(model_arg) in (models.DEFAULT_MODEL, models.DEFAULT_MODEL_HF_NAME):
        hf, _ = models._load_gguf_cached(models.default_gguf_path(), torch.float32, True)
    elif str(model_arg).endswith(".gguf"):
        hf, _ = models._load_gguf_cached(Path(model_arg).expanduser(), torch.float32, True)
    else:
        hf, _ = models._load_hf(Path(model_arg).expanduser(), None, torch.float32)
    return model, hf.eval()


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def interleaved(variants: dict[str, Callable[[], Any]], rounds: int) -> dict[str, list[float]]:
    """Run each variant once per round, in order, and return each one's wall times."""
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            seconds, _ = timed(fn)
            times[name].append(seconds)
    return times


def median_ratio(numerator: list[float], denominator: list[float]) -> float:
    return statistics.median(a / b for a, b in zip(numerator, denominator, strict=True))


def prompt_ids(model: Any, n: int) -> list[list[int]]:
    from roast_tl.generation import encode_prompt, format_prompt

    return [encode_prompt(model, format_prompt(model, PROMPTS[i % len(PROMPTS)])) for i in range(n)]


def bench_generation(model: Any, hf: Any, *, batches: list[int], new_tokens: int, rounds: int) -> list[dict[str, Any]]:
    """Sampling throughput: roast_tl vs HF generate (unwrapped and wrapped), same rows and lengths."""
    from roast_tl.generation import generate_tokens, left_pad, pad_id

    pad = pad_id(model)
    rows = []
    for batch in batches:
        prompts = prompt_ids(model, batch)
        ids, mask = left_pad(prompts, pad)

        def ours(prompts: list[list[int]] = prompts) -> int:
            gens = [torch.Generator().manual_seed(i) for i in range(len(prompts))]
            out = generate_tokens(model, prompts, max_new_tokens=new_tokens, temperature=0.8,
                                  top_p=0.9, generators=gens, stop_token_ids=())
            assert all(len(t) == new_tokens for t in out.tokens)
            return new_tokens * len(prompts)

        def hf_generate(target: Any, ids: torch.Tensor = ids, mask: torch.Tensor = mask) -> int:
            torch.manual_seed(0)
            with torch.inference_mode():
                out = target.generate(
                    input_ids=ids, attention_mask=mask, do_sample=True, temperature=0.8, top_p=0.9,
                    top_k=0, max_new_tokens=new_tokens, min_new_tokens=new_tokens, pad_token_id=pad,
                )
            assert out.shape[1] - ids.shape[1] == new_tokens
            return new_tokens * ids.shape[0]

        times = interleaved({
            "roast_tl": ours,
            "hf": lambda: hf_generate(hf),
            "hf_wrapped": lambda: hf_generate(model.original_model),
        }, rounds)
        produced = new_tokens * batch
        row = {"batch": batch, "new_tokens": new_tokens, "prompt_len": int(ids.shape[1]),
               "rounds": rounds}
        for name, t in times.items():
            row[f"{name}_tok_s"] = produced / statistics.median(t)
        row["ratio_vs_hf"] = median_ratio(times["hf"], times["roast_tl"])
        row["ratio_vs_hf_wrapped"] = median_ratio(times["hf_wrapped"], times["roast_tl"])
        row["hf_wrapped_vs_hf"] = median_ratio(times["hf"], times["hf_wrapped"])
        row["target"] = 0.9
        row["met"] = row["ratio_vs_hf"] >= 0.9
        rows.append(row)
        print(f"  generation batch {batch}: {row['ratio_vs_hf']:.2f}x HF", flush=True)
    return rows


def bench_steering(model: Any, *, batch: int, new_tokens: int, rounds: int) -> dict[str, Any]:
    """Sampling through roast_tl inside `steer(...)` vs without it."""
    import roast_tl
    from roast_tl.generation import generate_tokens
    from roast_tl.sites import hook_name, model_name

    layer = model.cfg.n_layers // 3
    name = hook_name("resid_post", layer)
    gen = torch.Generator().manual_seed(0)
    vector = roast_tl.SteeringVector(
        {name: roast_tl.max_norm(torch.randn(model.cfg.d_model, generator=gen))},
        {"model_name": model_name(model)},
    )
    prompts = prompt_ids(model, batch)

    def run() -> None:
        gens = [torch.Generator().manual_seed(i) for i in range(batch)]
        generate_tokens(model, prompts, max_new_tokens=new_tokens, temperature=0.8, top_p=0.9,
                        generators=gens, stop_token_ids=())

    def steered() -> None:
        with roast_tl.steer(model, vector, 1.0):
            run()

    times = interleaved({"unsteered": run, "steered": steered}, rounds)
    produced = batch * new_tokens
    ratio = median_ratio(times["unsteered"], times["steered"])
    return {"batch": batch, "new_tokens": new_tokens, "hook": name, "rounds": rounds,
            "unsteered_tok_s": produced / statistics.median(times["unsteered"]),
            "steered_tok_s": produced / statistics.median(times["steered"]),
            "ratio": ratio, "target": 0.97, "met": ratio >= 0.97}


def synthetic_contrasts(model: Any, n_rollouts: int, *, per_group: int = 8, seed: int = 0) -> Any:
    """Contrast groups of real chat prompts and random completions of real lengths (8-96 tokens)."""
    from roast_tl.pairs import ContrastGroup, ContrastSet

    gen = torch.Generator().manual_seed(seed)
    prompts = prompt_ids(model, len(PROMPTS))
    vocab = int(model.cfg.d_vocab)
    groups = []
    for g in range(math.ceil(n_rollouts / per_group)):
        size = min(per_group, n_rollouts - g * per_group)
        prompt = prompts[g % len(prompts)]
        seqs = []
        for _ in range(size):
            length = int(torch.randint(8, 97, (), generator=gen))
            seqs.append((prompt, torch.randint(0, vocab, (length,), generator=gen).tolist()))
        half = max(1, size // 2)
        groups.append(ContrastGroup(f"g{g}", seqs[:half], seqs[half:] or seqs[:1], 1.0, "rollouts"))
    return ContrastSet(groups=groups, counts={"rollouts": len(groups)})


def padded_batches(model: Any, contrasts: Any, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Every (prompt + response) sequence of every group, left-padded, as (ids, mask) batches."""
    from roast_tl.generation import left_pad, pad_id

    flat = [s for g in contrasts.groups for s in (*g.positives, *g.negatives)]
    pad = pad_id(model)
    for start in range(0, len(flat), batch_size):
        yield left_pad([p + r for p, r in flat[start : start + batch_size]], pad)


def full_forward(model: Any, contrasts: Any, batch_size: int) -> None:
    """A plain, hook-free full forward of the same sequences in the same batches (the reference)."""
    from roast_tl.generation import position_ids_for

    with torch.inference_mode():
        for ids, mask in padded_batches(model, contrasts, batch_size):
            model.original_model(input_ids=ids, attention_mask=mask,
                                 position_ids=position_ids_for(mask), use_cache=False,
                                 logits_to_keep=1)


def bench_activations(model: Any, *, n_rollouts: int, rounds: int, memory_sizes: list[int],
                      model_arg: str | None, threads: int | None) -> dict[str, Any]:
    """contrast_means time per 1,000 rollouts vs a full forward, vs depth, and peak memory."""
    from roast_tl.activations import contrast_means
    from roast_tl.sites import hook_name

    contrasts = synthetic_contrasts(model, n_rollouts)
    n_seqs = sum(len(g.positives) + len(g.negatives) for g in contrasts.groups)
    tokens = sum(len(p) + len(r) for g in contrasts.groups for p, r in (*g.positives, *g.negatives))
    n_layers = model.cfg.n_layers
    depth_layers = sorted({0, n_layers // 3, (2 * n_layers) // 3, n_layers - 1})
    batch_size = 16

    def capture(layer: int) -> Callable[[], Any]:
        return lambda: contrast_means(model, contrasts, [hook_name("resid_post", layer)],
                                      batch_size=batch_size, progress=False)

    variants: dict[str, Callable[[], Any]] = {"full_forward": lambda: full_forward(model, contrasts, batch_size)}
    variants.update({f"layer_{layer}": capture(layer) for layer in depth_layers})
    times = interleaved(variants, rounds)
    per_1000 = {k: statistics.median(v) * 1000 / n_seqs for k, v in times.items()}
    default_layer = n_layers // 3
    depth = [{"layer": layer, "s_per_1000": per_1000[f"layer_{layer}"],
              "vs_full_forward": median_ratio(times[f"layer_{layer}"], times["full_forward"])}
             for layer in depth_layers]
    memory = [memory_in_subprocess(n, model_arg, threads) for n in memory_sizes]
    control = [memory_in_subprocess(n, model_arg, threads, "keep_all") for n in memory_sizes]
    return {
        "n_rollouts": n_seqs, "mean_tokens_per_rollout": tokens / n_seqs, "batch_size": batch_size,
        "rounds": rounds, "layer": default_layer,
        "contrast_means_s_per_1000": per_1000[f"layer_{default_layer}"],
        "full_forward_s_per_1000": per_1000["full_forward"],
        "ratio_vs_full_forward": median_ratio(times[f"layer_{default_layer}"], times["full_forward"]),
        "depth": depth,
        "stops_at_last_layer": all(a["s_per_1000"] <= b["s_per_1000"] * 1.15
                                   for a, b in zip(depth, depth[1:], strict=False))
                               and depth[0]["s_per_1000"] < 0.6 * depth[-1]["s_per_1000"],
        "memory": memory,
        "memory_growth_mb": memory[-1]["delta_mb"] - memory[0]["delta_mb"],
        "memory_flat": memory[-1]["delta_mb"] - memory[0]["delta_mb"] < 64,
        "memory_control_keep_all": control,
        "memory_control_growth_mb": control[-1]["delta_mb"] - control[0]["delta_mb"],
    }


def memory_in_subprocess(n_rollouts: int, model_arg: str | None, threads: int | None,
                         mode: str = "contrast_means") -> dict[str, Any]:
    command = [sys.executable, __file__, "--memory-child", str(n_rollouts), "--memory-mode", mode]
    if model_arg:
        command += ["--model", model_arg]
    if threads:
        command += ["--threads", str(threads)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def proc_status_mb(field: str) -> float | None:
    """A VmRSS/VmHWM line of /proc/self/status in MB (None off Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS; False where unsupported.

    `ru_maxrss` is a lifetime peak, so the model load's transient peak would hide any growth in
    the step measured after it. Writing 5 to /proc/self/clear_refs (Linux >= 4.0) restarts it.
    """
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return proc_status_mb("VmHWM") is not None


def keep_every_activation(model: Any, contrasts: Any, name: str, batch_size: int = 16) -> list[torch.Tensor]:
    """The naive capture that contrast_means avoids: keep every token's activation at `name`
    (stopping the forward there, as contrast_means does). The memory benchmark runs it as a
    control: it must show growth, or the measurement cannot see any."""
    from roast_tl.activations import _StopForward
    from roast_tl.generation import forward_step, position_ids_for

    kept: list[torch.Tensor] = []

    def keep(activation: torch.Tensor, hook: Any) -> None:
        kept.append(activation.detach().clone())
        raise _StopForward

    with torch.inference_mode(), model.hooks(fwd_hooks=[(name, keep)]):
        for ids, mask in padded_batches(model, contrasts, batch_size):
            try:
                forward_step(model, ids, mask, position_ids_for(mask), use_cache=False)
            except _StopForward:
                pass
    return kept


def memory_child(args: argparse.Namespace) -> None:
    """In a fresh process: load the model, capture n rollouts, print the RSS growth it caused."""
    import gc

    import roast_tl
    from roast_tl.activations import contrast_means
    from roast_tl.sites import hook_name

    def lifetime_peak_mb() -> float:
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        return kb / 1024 if platform.system() != "Darwin" else kb / 2**20

    model = roast_tl.load_model(args.model)
    name = hook_name("resid_post", args.memory_layer)

    def capture(contrasts: Any) -> Any:
        if args.memory_mode == "keep_all":
            return keep_every_activation(model, contrasts, name)
        return contrast_means(model, contrasts, [name], progress=False)

    contrasts = synthetic_contrasts(model, args.memory_child)
    # Warm up once on a few sequences, so one-time allocations are not counted as growth.
    capture(synthetic_contrasts(model, 16, seed=1))
    gc.collect()
    resettable = reset_peak_rss()
    before = proc_status_mb("VmRSS") if resettable else lifetime_peak_mb()
    start = time.perf_counter()
    capture(contrasts)
    seconds = time.perf_counter() - start
    peak = proc_status_mb("VmHWM") if resettable else lifetime_peak_mb()
    print(json.dumps({"n_rollouts": args.memory_child, "layer": args.memory_layer,
                      "mode": args.memory_mode,
                      "measure": "VmHWM after reset" if resettable else "ru_maxrss (lifetime)",
                      "rss_before_mb": before, "peak_rss_mb": peak, "delta_mb": peak - before,
                      "seconds": seconds}))


def bandwidth_gb_s(megabytes: int = 256, rounds: int = 7) -> float:
    """Memory bandwidth from a large tensor copy: (read + write bytes) / time, median of rounds."""
    src = torch.ones(megabytes * 2**20 // 4)
    dst = torch.empty_like(src)
    dst.copy_(src)
    times = [timed(lambda: dst.copy_(src))[0] for _ in range(rounds)]
    return 2 * src.numel() * 4 / statistics.median(times) / 1e9


def decode_step_seconds(step: Callable[[Any, torch.Tensor], Any], first: torch.Tensor, steps: int) -> float:
    """Median time of single-token cached decode steps (after a prefill of `first`)."""
    with torch.inference_mode():
        past, token = step(None, first)
        times = []
        for _ in range(steps):
            seconds, (past, token) = timed(lambda past=past, token=token: step(past, token))
            times.append(seconds)
    return statistics.median(times)


def bench_roofline(model: Any, hf: Any, *, steps: int, rounds: int) -> dict[str, Any]:
    """Weight bytes per decode step / bandwidth, against measured batch-1 greedy decode speed."""
    from roast_tl.generation import forward_step

    unique = {id(p): p for p in model.original_model.parameters()}
    weight_bytes = sum(p.numel() * p.element_size() for p in unique.values())
    bandwidth = statistics.median(bandwidth_gb_s() for _ in range(3))
    bound = bandwidth * 1e9 / weight_bytes
    ids = torch.tensor([prompt_ids(model, 1)[0]])

    def bridge_step(past: Any, tokens: torch.Tensor) -> tuple[Any, torch.Tensor]:
        width = tokens.shape[1] + (past.get_seq_length() if past is not None else 0)
        mask = torch.ones(1, width, dtype=torch.long)
        positions = torch.arange(width - tokens.shape[1], width)[None]
        logits, past = forward_step(model, tokens, mask, positions, past)
        return past, logits.argmax(-1, keepdim=True)

    def hf_step(past: Any, tokens: torch.Tensor) -> tuple[Any, torch.Tensor]:
        out = hf(input_ids=tokens, past_key_values=past, use_cache=True, logits_to_keep=1)
        return out.past_key_values, out.logits[:, -1].argmax(-1, keepdim=True)

    step_times: dict[str, list[float]] = {"roast_tl": [], "hf": []}
    for _ in range(rounds):
        step_times["roast_tl"].append(decode_step_seconds(bridge_step, ids, steps))
        step_times["hf"].append(decode_step_seconds(hf_step, ids, steps))
    ours = 1 / statistics.median(step_times["roast_tl"])
    theirs = 1 / statistics.median(step_times["hf"])
    return {"weight_bytes": weight_bytes, "bandwidth_gb_s": bandwidth, "bound_tok_s": bound,
            "decode_tok_s_roast_tl": ours, "decode_tok_s_hf": theirs,
            "fraction_of_bound_roast_tl": ours / bound, "fraction_of_bound_hf": theirs / bound}


def markdown(results: dict[str, Any]) -> str:
    m = results["meta"]
    lines = [f"Speed on {m['model']} ({m['device']}, {m['torch_threads']} torch threads, "
             f"load average {m['loadavg_start']:.1f} -> {m['loadavg_end']:.1f}); "
             f"{'quick' if m['quick'] else 'full'} run, {m['seconds']:.0f} s.", "",
             "| measurement | roast_tl | reference | ratio | target |", "|---|---|---|---|---|"]
    for r in results["generation"]:
        lines.append(
            f"| sampling, batch {r['batch']} ({r['new_tokens']} new tok/row), tok/s | "
            f"{r['roast_tl_tok_s']:.1f} | HF {r['hf_tok_s']:.1f}; HF on bridge {r['hf_wrapped_tok_s']:.1f} | "
            f"{r['ratio_vs_hf']:.2f}x HF; {r['ratio_vs_hf_wrapped']:.2f}x HF on bridge | "
            f">= 0.9x HF: {'met' if r['met'] else 'missed'} |")
    s = results["steering"]
    lines.append(f"| steered sampling, batch {s['batch']}, tok/s | {s['steered_tok_s']:.1f} | "
                 f"unsteered {s['unsteered_tok_s']:.1f} | {s['ratio']:.3f}x | "
                 f">= 0.97x: {'met' if s['met'] else 'missed'} |")
    a = results["activations"]
    lines.append(f"| contrast_means, layer {a['layer']}, s per 1,000 rollouts "
                 f"({a['mean_tokens_per_rollout']:.0f} tok each) | {a['contrast_means_s_per_1000']:.1f} | "
                 f"full forward {a['full_forward_s_per_1000']:.1f} | {a['ratio_vs_full_forward']:.2f}x time | "
                 f"stops early: {'yes' if a['stops_at_last_layer'] else 'NO'} |")
    for d in a["depth"]:
        lines.append(f"| contrast_means, layer {d['layer']}, s per 1,000 | {d['s_per_1000']:.1f} | "
                     f"full forward | {d['vs_full_forward']:.2f}x time | |")
    for mem, ctl in zip(a["memory"], a["memory_control_keep_all"], strict=True):
        lines.append(f"| contrast_means peak RSS growth, {mem['n_rollouts']} rollouts, MB "
                     f"({mem['measure']}) | {mem['delta_mb']:.0f} | "
                     f"keep-every-activation control {ctl['delta_mb']:.0f} | | "
                     f"flat: {'yes' if a['memory_flat'] else 'NO'} |")
    r = results["roofline"]
    lines.append(f"| batch-1 greedy decode, tok/s | {r['decode_tok_s_roast_tl']:.1f} | "
                 f"HF {r['decode_tok_s_hf']:.1f}; roofline {r['bound_tok_s']:.1f} "
                 f"({r['weight_bytes'] / 1e6:.0f} MB / {r['bandwidth_gb_s']:.1f} GB/s) | "
                 f"{r['fraction_of_bound_roast_tl']:.2f} (HF {r['fraction_of_bound_hf']:.2f}) of bound | |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_child is not None:
        memory_child(args)
        return {}
    from roast_tl.sites import model_name

    start = time.perf_counter()
    loadavg_start = os.getloadavg()[0]
    model, hf = load(args.model)
    sizes = (
        {"batches": [1, 8, 32], "new_tokens": 4, "rounds": 1, "steer_tokens": 4, "steer_rounds": 2,
         "rollouts": 16, "act_rounds": 1, "memory": [10, 40], "steps": 4, "roof_rounds": 1}
        if args.quick else
        {"batches": [1, 8, 32], "new_tokens": 32, "rounds": 3, "steer_tokens": 24, "steer_rounds": 5,
         "rollouts": 64, "act_rounds": 2, "memory": [100, 1000], "steps": 16, "roof_rounds": 3}
    )
    print("generation throughput", flush=True)
    generation = bench_generation(model, hf, batches=sizes["batches"], new_tokens=sizes["new_tokens"],
                                  rounds=sizes["rounds"])
    print("steering overhead", flush=True)
    steering = bench_steering(model, batch=8, new_tokens=sizes["steer_tokens"], rounds=sizes["steer_rounds"])
    print("activation capture", flush=True)
    activations = bench_activations(model, n_rollouts=sizes["rollouts"], rounds=sizes["act_rounds"],
                                    memory_sizes=sizes["memory"], model_arg=args.model,
                                    threads=args.threads)
    print("roofline", flush=True)
    roofline = bench_roofline(model, hf, steps=sizes["steps"], rounds=sizes["roof_rounds"])
    results = {
        "meta": {"model": model_name(model), "model_arg": args.model, "quick": args.quick,
                 "device": f"{platform.machine()} CPU, {os.cpu_count()} cores",
                 "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                 "loadavg_start": loadavg_start, "loadavg_end": os.getloadavg()[0],
                 "seconds": time.perf_counter() - start},
        "generation": generation, "steering": steering, "activations": activations,
        "roofline": roofline,
    }
    table = markdown(results)
    print(table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    out.with_suffix(".md").write_text(table, encoding="utf-8")
    return results


if __name__ == "__main__":
    main()
