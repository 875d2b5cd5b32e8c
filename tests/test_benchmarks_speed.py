"""`benchmarks/speed.py --quick` runs end to end and writes the summary the README quotes.

The default test runs it on a tiny random Llama saved to a temporary folder (`--model PATH`): every
measurement, the memory child processes and the table, in well under a minute. The slow test does
the same on the real default model. Neither pins a number or a platform: only that every
documented figure is there, finite and positive.
"""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from tests.tiny_model import make_tiny_tokenizer, requires_bridge

pytestmark = requires_bridge  # the benchmarks compare a bridge with its wrapped HF model

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "speed.py"

POSITIVE = {
    "generation": (
        "roast_tl_tok_s",
        "hf_tok_s",
        "hf_wrapped_tok_s",
        "ratio_vs_hf",
        "ratio_vs_hf_wrapped",
        "hf_wrapped_vs_hf",
    ),
    "steering": (
        "steered_tok_s",
        "unsteered_tok_s",
        "hooked_unsteered_tok_s",
        "ratio",
        "ratio_vs_hooked",
    ),
    "activations": (
        "contrast_means_s_per_1000",
        "full_forward_s_per_1000",
        "ratio_vs_full_forward",
        "mean_tokens_per_rollout",
    ),
    "roofline": (
        "weight_bytes",
        "bandwidth_gb_s",
        "bound_tok_s",
        "decode_tok_s_roast_tl",
        "decode_tok_s_hf",
        "decode_tok_s_hooked_step",
        "fraction_of_bound_roast_tl",
        "fraction_of_bound_hf",
    ),
}
FLAGS = {
    "generation": ("met",),
    "steering": ("met",),
    "activations": ("stops_at_last_layer", "memory_flat"),
    "decode": ("met",),
    "demo_estimate": ("met",),
}
ROLLOUT_KEYS = ("roast_tl_s", "hf_s", "roast_tl_tok_s", "hf_tok_s", "ratio_vs_hf")


def positive_finite(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) and value > 0


def rows_of(results: dict, section: str) -> list[dict]:
    """A section's rows: `generation` is a list of rows (one per batch), the others one row."""
    value = results[section]
    return value if isinstance(value, list) else [value]


def run_quick(tmp_path: Path, *model: str) -> tuple[str, dict]:
    out = tmp_path / "speed.json"
    command = [sys.executable, str(SCRIPT), "--quick", "--threads", "1", "--out", str(out), *model]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert out.with_suffix(".md").read_text().startswith("Speed on ")
    return done.stdout, json.loads(out.read_text())


def check_summary(stdout: str, results: dict) -> None:
    assert "| measurement | roast_tl | reference | ratio | target |" in stdout
    sections = {"meta", "rollouts", "generation", "steering", "activations", "roofline", "decode"}
    assert sections | {"demo_estimate"} <= set(results)
    for workload in ("sentiment", "gsm8k"):  # the bars the issue reads, by name
        entries = results["rollouts"][workload]
        assert [e["rows"] for e in entries] == [8, 16]
        assert all(positive_finite(e[key]) for e in entries for key in ROLLOUT_KEYS)
        assert stdout.count(f"| {workload} rollouts, ") == len(entries)
    rss = results["rollouts"]["peak_rss"]
    assert all(positive_finite(rss[side]["peak_rss_mb"]) for side in ("roast_tl", "hf"))
    assert positive_finite(results["decode"]["fraction_of_roofline"])
    demo = results["demo_estimate"]
    assert positive_finite(demo["speedup_vs_before"]) and positive_finite(demo["now_median_s"])
    assert "| demo estimate step " in stdout
    assert results["meta"]["quick"] is True
    assert results["meta"]["targets"]  # the TARGETS the flags were judged against
    for section, keys in POSITIVE.items():
        for row in rows_of(results, section):
            for key in keys:
                assert positive_finite(row[key]), (section, key, row[key])
    for section, keys in FLAGS.items():
        for row in rows_of(results, section):
            assert all(isinstance(row[key], bool) for key in keys), (section, row)
    assert len(results["generation"]) >= 2
    assert stdout.count("| sampling, batch ") == len(results["generation"])

    acts = results["activations"]
    layers = [d["layer"] for d in acts["depth"]]
    assert layers == sorted(layers) and acts["layer"] in layers
    assert all(positive_finite(d["s_per_1000"]) for d in acts["depth"])
    memory, control = acts["memory"], acts["memory_control_keep_all"]
    assert len(memory) == len(control) >= 2
    assert [c["n_rollouts"] for c in control] == [m["n_rollouts"] for m in memory]
    for run, mode in [(m, "contrast_means") for m in memory] + [(c, "keep_all") for c in control]:
        assert run["mode"] == mode
        # The kernel's RSS counters are approximate: a flat run can read a fraction of a MB below 0.
        assert positive_finite(run["peak_rss_mb"]) and math.isfinite(run["delta_mb"]), run
        assert isinstance(run["measure"], str) and run["measure"]


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-layer random Llama and the tiny word-level tokenizer, saved as an HF folder."""
    folder = tmp_path_factory.mktemp("tiny_llama")
    tokenizer = make_tiny_tokenizer()
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_quick_speed_benchmark_on_a_tiny_model(tmp_path: Path, tiny_model_dir: Path) -> None:
    stdout, results = run_quick(tmp_path, "--model", str(tiny_model_dir))
    check_summary(stdout, results)
    assert results["meta"]["model_arg"] == str(tiny_model_dir)


@pytest.mark.slow
def test_quick_speed_benchmark_on_the_default_model(tmp_path: Path) -> None:
    stdout, results = run_quick(tmp_path)
    check_summary(stdout, results)
    assert results["meta"]["model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"


def test_path_agreement_benchmark_on_a_tiny_model(tmp_path: Path, tiny_model_dir: Path) -> None:
    out = tmp_path / "agreement.json"
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "path_agreement.py"),
        *("--model", str(tiny_model_dir), "--rows", "4", "--new-tokens", "4"),
        *("--threads", "1", "--out", str(out)),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(out.read_text())
    assert 0 <= results["logits"]["relative"] < 1e-4
    for name in ("unsteered_greedy", "unsteered_sampled", "steered_greedy", "steered_sampled"):
        assert results[name]["rows"] == 4 and 0 <= results[name]["identical_rows"] <= 4
    assert "rows with identical tokens" in out.with_suffix(".md").read_text()
