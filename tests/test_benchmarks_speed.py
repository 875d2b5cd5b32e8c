"""`benchmarks/speed.py --quick` on the real default model: it runs and writes the promised JSON."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "speed.py"


def _positive_finite(value):
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0


@pytest.mark.slow
def test_quick_speed_benchmark_writes_table_and_json(tmp_path):
    out = tmp_path / "speed.json"
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--threads", "1", "--out", str(out)],
                          capture_output=True, text=True, timeout=1200, cwd=SCRIPT.parents[1])
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| measurement |" in done.stdout
    assert out.with_suffix(".md").read_text().startswith("Speed on ")
    results = json.loads(out.read_text())
    assert set(results) == {"meta", "generation", "steering", "activations", "roofline"}
    assert results["meta"]["quick"] is True

    assert [r["batch"] for r in results["generation"]] == [1, 8, 32]
    for row in results["generation"]:
        for key in ("roast_tl_tok_s", "hf_tok_s", "hf_wrapped_tok_s", "ratio_vs_hf",
                    "ratio_vs_hf_wrapped", "hf_wrapped_vs_hf"):
            assert _positive_finite(row[key]), (key, row[key])
        assert isinstance(row["met"], bool)

    steering = results["steering"]
    for key in ("steered_tok_s", "unsteered_tok_s", "ratio"):
        assert _positive_finite(steering[key]), key

    acts = results["activations"]
    for key in ("contrast_means_s_per_1000", "full_forward_s_per_1000", "ratio_vs_full_forward",
                "mean_tokens_per_rollout"):
        assert _positive_finite(acts[key]), key
    assert [d["layer"] for d in acts["depth"]] == sorted(d["layer"] for d in acts["depth"])
    assert all(_positive_finite(d["s_per_1000"]) for d in acts["depth"])
    assert len(acts["memory"]) == 2
    for mem in acts["memory"]:
        assert _positive_finite(mem["peak_rss_mb"]) and mem["delta_mb"] >= 0
        assert mem["mode"] == "contrast_means" and mem["measure"] == "VmHWM after reset"  # Linux CI
    controls = acts["memory_control_keep_all"]
    assert [c["n_rollouts"] for c in controls] == [m["n_rollouts"] for m in acts["memory"]]
    assert all(c["mode"] == "keep_all" and c["delta_mb"] >= 0 for c in controls)
    assert isinstance(acts["memory_flat"], bool) and isinstance(acts["stops_at_last_layer"], bool)

    roof = results["roofline"]
    for key in ("weight_bytes", "bandwidth_gb_s", "bound_tok_s", "decode_tok_s_roast_tl",
                "decode_tok_s_hf", "fraction_of_bound_roast_tl"):
        assert _positive_finite(roof[key]), key
