"""Steering methods behind one registry: ROAST follows the model's own rollouts, CAA and SADI the
written answers; CAA and ROAST coincide when the rollouts are the written answers; ROAST variants
share one set of rollouts and activations."""

import warnings
from dataclasses import replace

import pytest
import torch

import roast_tl.generation
import roast_tl.harness.baselines as baselines
from roast_tl._warnings import RoastWarning
from roast_tl.harness.baselines import (
    ADD_ALPHAS,
    METHODS,
    MULTIPLY_ALPHAS,
    MethodContext,
    SteeringSetup,
    build_method,
    few_shot_prefix,
    method_named,
)
from roast_tl.pairs import written_answer_tokens
from roast_tl.rollouts import Rollout
from roast_tl.scaling import top_k_mask
from roast_tl.tasks.base import Task, TaskItem
from roast_tl.vector import SteeringVector
from tests.tiny_model import EMBED_HOOK, HOOK, make_tiny_model, tiny_task, token_embeddings


def _cos(a, b):
    return torch.nn.functional.cosine_similarity(a, b, dim=0).item()


def _task(items):
    """A task whose dev and test splits re-ask the first two training prompts (under their own
    ids): these tests build methods and never read accuracy, so the overlap warning is moot."""
    held_out = {
        split: [replace(item, id=f"{item.id}-{split}") for item in items[:2]]
        for split in ("dev", "test")
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RoastWarning)
        return Task(
            name="tiny",
            splits={"train": items, **held_out},
            extract_answer=lambda s: s.strip() or None,
            max_new_tokens=2,
            few_shot=items[:1],
        )


@pytest.fixture(scope="module")
def planted():
    """Rollouts differ along u; the written gold/wrong answers ("good"/"bad") differ along z.

    ROAST reads the model's own right vs wrong rollouts, so it must find u; CAA reads the
    teacher-forced written answers, so it can only find z.
    """
    model = make_tiny_model(seed=3)
    tok = model.tokenizer
    gen = torch.Generator().manual_seed(11)
    d = model.cfg.d_model
    u = torch.nn.functional.normalize(torch.randn(d, generator=gen), dim=0)
    z = torch.randn(d, generator=gen)
    z = torch.nn.functional.normalize(z - (z @ u) * u, dim=0)  # orthogonal to u
    embed = token_embeddings(model)
    items, rollouts = [], []
    with torch.no_grad():
        base = torch.randn(d, generator=gen)
        embed[tok.convert_tokens_to_ids("good")] = base + 3.0 * z
        embed[tok.convert_tokens_to_ids("bad")] = base - 3.0 * z
        for g in range(8):
            right, wrong = tok.convert_tokens_to_ids(str(g)), tok.convert_tokens_to_ids(str(g + 9))
            shared = torch.randn(d, generator=gen)
            embed[right] = shared + (0.5 + g) * u / 2 + 0.05 * torch.randn(d, generator=gen)
            embed[wrong] = shared - (0.5 + g) * u / 2
            item = TaskItem(f"g{g}", "review : the movie", str(g), "good", "bad")
            items.append(item)
            prompt_ids = written_answer_tokens(tok, item, "good")[0]
            for k, (token, ok) in enumerate([(right, True), (wrong, False), (wrong, False)]):
                rollouts.append(
                    Rollout(item.id, k, item.prompt, prompt_ids, [token], str(g), None, ok, 0)
                )
    return model, _task(items), rollouts, u, z


def _ctx(model, task, rollouts, **kwargs):
    settings = {"layers": [0], "seed": 42, "site": "resid_pre", "read_at": "response_mean"}
    return MethodContext(model, task, task.items("train"), rollouts=rollouts, **settings | kwargs)


def test_roast_follows_the_rollouts_and_caa_and_sadi_the_written_answers(planted):
    model, task, rollouts, u, z = planted
    ctx = _ctx(model, task, rollouts)
    roast = build_method("roast", ctx).vector[EMBED_HOOK]
    plain = build_method("roast_plain", ctx).vector[EMBED_HOOK]
    caa = build_method("caa", ctx).vector[EMBED_HOOK]
    assert _cos(roast, u) > 0.99 and _cos(plain, u) > 0.99
    assert abs(_cos(caa, u)) < 0.05  # teacher-forced texts carry none of the signal
    assert _cos(caa, z) > 0.99
    sadi = build_method("sadi", ctx)
    mask = sadi.vector[EMBED_HOOK]
    assert sadi.mode == "multiply" and set(mask.unique().tolist()) == {0.0, 1.0}
    assert int(mask.sum()) == round(ctx.top_k_fraction * model.cfg.d_model)
    assert torch.equal(mask, top_k_mask(z, int(mask.sum())))  # SADI also follows the texts


def test_caa_and_roast_coincide_when_rollouts_are_the_written_answers(tiny_model):
    task = tiny_task(n_train=3)
    items = task.items("train")
    rollouts = []
    for item in items:
        for k, (text, ok) in enumerate(
            [(item.gold_completion, True), (item.wrong_completion, False)]
        ):
            prompt_ids, answer_ids = written_answer_tokens(tiny_model.tokenizer, item, text)
            rollouts.append(
                Rollout(item.id, k, item.prompt, prompt_ids, answer_ids, text, None, ok, 0)
            )
    ctx = MethodContext(tiny_model, task, items, [1, 2], rollouts)
    caa, plain = build_method("caa", ctx).vector, build_method("roast_plain", ctx).vector
    assert caa.hook_names == plain.hook_names == [HOOK, "blocks.2.hook_resid_post"]
    for name in caa:
        torch.testing.assert_close(caa[name], plain[name])
    one = MethodContext(
        tiny_model, task, items[:1], [1], [r for r in rollouts if r.item_id == "q0"]
    )
    torch.testing.assert_close(
        build_method("caa", one).vector[HOOK], build_method("roast", one).vector[HOOK]
    )


def test_roast_variants_share_rollouts_and_activations(planted, monkeypatch):
    model, task, rollouts, _, _ = planted
    calls = []
    original = baselines.contrast_means

    def counting(model, contrasts, names, **kwargs):
        calls.append(tuple(names))
        return original(model, contrasts, names, **kwargs)

    def no_sampling(*args, **kwargs):
        raise AssertionError("building a method must never sample rollouts")

    monkeypatch.setattr(baselines, "contrast_means", counting)
    monkeypatch.setattr(roast_tl.generation, "generate_tokens", no_sampling)
    ctx = _ctx(model, task, rollouts, layers=[1], site="resid_post", read_at="last")
    names = ["roast", "roast_plain", "roast_l2", "roast_softmax", "roast_mlp", "caa", "sadi"]
    setups = {m: build_method(m, ctx) for m in names}
    # ROC at resid_post, ROC at mlp_post, teacher-forced at resid_post: each read once.
    assert calls == [(HOOK,), ("blocks.1.mlp.hook_post",), (HOOK,)]
    assert setups["roast_l2"].vector[HOOK].norm().item() == pytest.approx(1.0, abs=1e-5)
    assert setups["roast"].vector[HOOK].abs().max().item() == pytest.approx(1.0)
    assert setups["roast_mlp"].vector.hook_names == ["blocks.1.mlp.hook_post"]
    assert all(s.method == m for m, s in setups.items())


def test_every_method_records_the_shared_metadata(planted):
    model, task, rollouts, _, _ = planted
    ctx = _ctx(model, task, rollouts, layers=[1], site="resid_post", read_at="last")
    expected_scaler = {
        "roast": "max_norm",
        "roast_plain": "max_norm",
        "roast_l2": "l2_normalize",
        "roast_softmax": "softmax_scale",
        "roast_mlp": "max_norm",
        "caa": "max_norm",
    }
    for name in [*expected_scaler, "sadi"]:
        meta = build_method(name, ctx).vector.metadata
        assert meta["method"] == name.split("_")[0]
        assert meta["model_name"] == model.cfg.model_name and meta["d_model"] == 32
        assert meta["task"] == "tiny" and meta["seed"] == 42 and meta["read_at"] == "last"
        assert "roast_tl_version" in meta and meta["hook_names"]
        assert meta.get("scaler") == expected_scaler.get(name)
    assert build_method("roast_plain", ctx).vector.metadata["grouped"] is False
    assert build_method("roast_mlp", ctx).vector.metadata["site"] == "mlp_post"
    assert build_method("sadi", ctx).vector.metadata["top_k_fraction"] == 0.05


def test_registry_needs_rollouts_and_alpha_grids():
    assert [m for m, entry in METHODS.items() if entry.needs_rollouts] == [
        "roast",
        "roast_plain",
        "roast_l2",
        "roast_softmax",
        "roast_mlp",
    ]
    assert METHODS["none"].alpha_grid == METHODS["few_shot"].alpha_grid == ()
    assert METHODS["caa"].alpha_grid == METHODS["roast"].alpha_grid == ADD_ALPHAS
    assert METHODS["sadi"].alpha_grid == MULTIPLY_ALPHAS
    assert method_named("roast") is METHODS["roast"]
    with pytest.raises(ValueError, match="unknown method 'cca'.*'caa'"):
        method_named("cca")


def test_none_few_shot_and_errors(tiny_model):
    items = [TaskItem(f"i{i}", f"the movie {i}", "good", f"answer {i}", "bad") for i in range(6)]
    task = _task(items)
    ctx = MethodContext(tiny_model, task, items, [1], seed=22, few_shot_k=2)
    assert not build_method("none", ctx).steers
    setup = build_method("few_shot", ctx)
    assert not setup.steers and setup.prompt_prefix.count("\n\n") == 2
    assert setup.prompt_prefix == few_shot_prefix(task, 2, pool=items, seed=22)
    assert few_shot_prefix(task, 3) == "the movie 0\nanswer 0\n\n"  # the task's own examples
    seeded = {few_shot_prefix(task, 2, seed=s) for s in range(10)}
    assert len(seeded) > 1  # seeds draw other examples
    with pytest.raises(ValueError, match="unknown method 'cca'"):
        build_method("cca", ctx)
    with pytest.raises(ValueError, match="need rollouts"):
        build_method("roast", ctx)


def test_a_setup_hands_evaluate_its_vector_mode_positions_and_prefix():
    vector = SteeringVector({HOOK: torch.ones(4)})
    setup = SteeringSetup("sadi", vector, mode="multiply", positions="all", prompt_prefix="p\n")
    assert setup.steers and not SteeringSetup("none").steers
    assert setup.evaluate_kwargs() == {
        "vector": vector,
        "mode": "multiply",
        "positions": "all",
        "prompt_prefix": "p\n",
    }
