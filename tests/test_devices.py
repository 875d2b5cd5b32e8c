"""Every tensor follows the model's device and dtype: the whole pipeline on each device × dtype.

CPU in fp32 and bf16 runs in the default suite; the CUDA cases are marked `gpu` and skipped where
CUDA is absent (CI). Run them on a GPU machine with `pytest -m gpu tests/test_devices.py`.
"""

import pytest
import torch

import roast_tl
from tests.tiny_model import HOOK, make_tiny_model_in, random_vector, tiny_task

CUDA = torch.cuda.is_available()
CASES = [
    pytest.param(("cpu", torch.float32), id="cpu-fp32"),
    pytest.param(("cpu", torch.bfloat16), id="cpu-bf16"),
    pytest.param(("cuda", torch.float32), id="cuda-fp32", marks=pytest.mark.gpu),
    pytest.param(("cuda", torch.bfloat16), id="cuda-bf16", marks=pytest.mark.gpu),
]


@pytest.fixture(scope="module", params=CASES)
def placed(request):
    device, dtype = request.param
    if device == "cuda" and not CUDA:
        pytest.skip("no CUDA device here (CI has none); run on a GPU machine")
    return make_tiny_model_in(dtype).to(device), device, dtype


def test_estimate_runs_on_the_models_device_and_returns_fp32_cpu_vectors(placed, tmp_path):
    model, _, _ = placed
    task = tiny_task()
    vector = roast_tl.estimate(
        model,
        task,
        layers=[1],
        n_rollouts=4,  # 2 leave most prompts a fallback: a LowYieldWarning
        seed=0,
        max_new_tokens=3,
        progress=False,
        rollouts_path=tmp_path / "rollouts.jsonl",
    )
    v = vector[HOOK]
    assert v.dtype == torch.float32 and v.device.type == "cpu"
    assert torch.isfinite(v).all() and v.abs().max().item() == pytest.approx(1.0)


def test_alpha_zero_is_unsteered_and_steering_changes_the_output(placed):
    model, device, _ = placed
    vector = random_vector(model, scale=30.0)
    prompts = ["the movie was good", "a bad movie"]
    plain = roast_tl.generate(model, prompts, max_new_tokens=4)
    with roast_tl.steer(model, vector, 0.0):
        assert roast_tl.generate(model, prompts, max_new_tokens=4) == plain
    tokens = torch.tensor([[1, 5, 6, 7]], device=device)
    with torch.no_grad():
        base = model(tokens)
        with roast_tl.steer(model, vector, 4.0):
            steered = model(tokens)
    assert steered.device.type == device
    assert not torch.equal(base[0, -1], steered[0, -1])  # the last position moved
    assert torch.equal(base[0, :-1], steered[0, :-1])  # and nothing before it


def test_sampling_and_evaluate_run_on_the_device(placed):
    model, _, _ = placed
    sampled = roast_tl.generate(
        model, ["the movie was good"] * 2, temperature=0.8, top_p=0.9, max_new_tokens=4, seed=3
    )
    again = roast_tl.generate(
        model, ["the movie was good"] * 2, temperature=0.8, top_p=0.9, max_new_tokens=4, seed=3
    )
    assert sampled == again
    task = tiny_task()
    result = roast_tl.evaluate(model, task, random_vector(model), 2.0, progress=False)
    assert result.n == len(task.items("test")) and 0.0 <= result.accuracy <= 1.0


def test_a_saved_vector_loads_and_steers_on_the_device(placed, tmp_path):
    model, device, _ = placed
    vector = random_vector(model)
    path = vector.save(tmp_path / "v.safetensors")
    loaded = roast_tl.SteeringVector.load(path, model)
    assert torch.equal(loaded[HOOK], vector[HOOK])
    tokens = torch.tensor([[1, 5, 6, 7]], device=device)
    with torch.no_grad(), roast_tl.steer(model, loaded, 1.0):
        with_loaded = model(tokens)
    with torch.no_grad(), roast_tl.steer(model, vector, 1.0):
        with_original = model(tokens)
    assert torch.equal(with_loaded, with_original)
