"""Baselines behind one interface: ROAST wins on a planted on-distribution signal, CAA and ROAST
coincide when the rollouts are the written answers, and ROAST variants share one set of rollouts."""

import pytest
import torch

import roast_tl.baselines as baselines
from roast_tl import rollouts as rollouts_module
from roast_tl.baselines import (
    METHODS,
    MethodContext,
    build_method,
    few_shot_prefix,
    needs_rollouts,
    teacher_forced_contrast,
    top_k_mask,
)
from roast_tl.pairs import written_answer_tokens
from roast_tl.rollouts import Rollout
from roast_tl.tasks.base import Task, TaskItem
from tests.tiny_model import make_tiny_model

EMBED_HOOK = "blocks.0.hook_resid_pre"  # the token embeddings: planted signals are exact there


pytestmark = pytest.mark.usefixtures("one_thread")


def _cos(a, b):
    return torch.nn.functional.cosine_similarity(a, b, dim=0).item()


def _task(items):
    return Task(name="tiny", splits={"train": items, "dev": items[:2], "test": items[:2]},
                extract_answer=lambda s: s.strip() or None, max_new_tokens=2,
                few_shot=items[:1])


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
    embed = model.original_model.get_input_embeddings().weight
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
            prompt_ids = written_answer_tokens(model, item, "good")[0]
            for k, (token, ok) in enumerate([(right, True), (wrong, False), (wrong, False)]):
                rollouts.append(Rollout(item.id, k, item.prompt, prompt_ids, [token],
                                        tok.decode([token]), None, ok, 0))
    return model, _task(items), rollouts, u, z


def _ctx(model, task, rollouts, **kwargs):
    settings = dict(layers=[0], seed=42, hook_site="resid_pre", position="response_mean") | kwargs
    return MethodContext(model, task, task.items("train"), rollouts=rollouts, **settings)


def test_roast_wins_on_planted_on_distribution_signal(planted):
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
    assert torch.equal(mask, top_k_mask(z, int(mask.sum())))  # SADI also follows the written texts


def test_caa_and_roast_coincide_when_rollouts_are_the_written_answers(tiny_model):
    prompts = ["the movie was good", "this food was awful", "what is 3 plus 4 ?"]
    items = [TaskItem(f"i{i}", p, "good", "good", "bad") for i, p in enumerate(prompts)]
    rollouts = []
    for item in items:
        for k, (text, ok) in enumerate([(item.gold_completion, True), (item.wrong_completion, False)]):
            prompt_ids, answer_ids = written_answer_tokens(tiny_model, item, text)
            rollouts.append(Rollout(item.id, k, item.prompt, prompt_ids, answer_ids, text, None, ok, 0))
    task = _task(items)
    ctx = MethodContext(tiny_model, task, items, [1, 2], rollouts)
    caa, plain = build_method("caa", ctx).vector, build_method("roast_plain", ctx).vector
    assert caa.hook_names == plain.hook_names == ["blocks.1.hook_resid_post", "blocks.2.hook_resid_post"]
    for name in caa:
        torch.testing.assert_close(caa[name], plain[name])
    one = MethodContext(tiny_model, task, items[:1], [1], [r for r in rollouts if r.item_id == "i0"])
    torch.testing.assert_close(build_method("caa", one).vector["blocks.1.hook_resid_post"],
                               build_method("roast", one).vector["blocks.1.hook_resid_post"])


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
    monkeypatch.setattr(rollouts_module, "generate_tokens", no_sampling)
    ctx = _ctx(model, task, rollouts, layers=[1], hook_site="resid_post", position="last")
    setups = {m: build_method(m, ctx) for m in ["roast", "roast_plain", "roast_l2", "roast_softmax",
                                                 "roast_mlp", "caa", "sadi"]}
    assert calls == [("blocks.1.hook_resid_post",), ("blocks.1.mlp.hook_post",),
                     ("blocks.1.hook_resid_post",)]  # ROC resid, ROC mlp, teacher-forced resid
    v = setups["roast_l2"].vector["blocks.1.hook_resid_post"]
    assert v.norm().item() == pytest.approx(1.0, abs=1e-5)
    assert setups["roast"].vector["blocks.1.hook_resid_post"].abs().max().item() == pytest.approx(1.0)
    assert setups["roast_mlp"].vector.hook_names == ["blocks.1.mlp.hook_post"]
    assert setups["roast_plain"].vector.metadata["grouped"] is False
    assert setups["roast"].vector.metadata["seed"] == 42
    assert all(s.method == m for m, s in setups.items())


def test_none_few_shot_and_errors(tiny_model):
    items = [TaskItem(f"i{i}", f"the movie {i}", "good", f"answer {i}", "bad") for i in range(6)]
    task = _task(items)
    ctx = MethodContext(tiny_model, task, items, [1], seed=22, few_shot_k=2)
    assert not build_method("none", ctx).steers
    setup = build_method("few_shot", ctx)
    assert not setup.steers and setup.prompt_prefix.count("\n\n") == 2
    assert setup.prompt_prefix == few_shot_prefix(task, 2, pool=items, seed=22)
    assert few_shot_prefix(task, 3) == "the movie 0\nanswer 0\n\n"  # the task's own examples
    assert [m for m in METHODS if needs_rollouts(m)] == [
        "roast", "roast_plain", "roast_l2", "roast_softmax", "roast_mlp"]
    with pytest.raises(ValueError, match="unknown method 'cca'"):
        build_method("cca", ctx)
    with pytest.raises(ValueError, match="need rollouts"):
        build_method("roast", ctx)
    no_wrong = [TaskItem("x", "the movie", "good", "good", None)]
    assert teacher_forced_contrast(tiny_model, no_wrong).groups == []
    with pytest.raises(ValueError, match="k must be in 1..2"):
        top_k_mask(torch.tensor([1.0, 2.0]), 3)
