"""`estimate`: a planted direction is recovered, the one call equals the stages, runs resume and
are bit-reproducible, the metadata says how the vector was made, and every estimate reports its
yield (printed, in the metadata, and as warnings when it is low)."""

import json
import warnings
from dataclasses import replace

import pytest
import torch

import roast_tl
import roast_tl.generation
from roast_tl._fingerprint import model_fingerprint
from roast_tl._warnings import LowYieldWarning, RoastWarning
from roast_tl.activations import ContrastMeans
from roast_tl.estimate import vector_from_means, vector_metadata
from roast_tl.pairs import build_contrast_set
from roast_tl.report import YieldReport, check_gold
from roast_tl.rollouts import load_rollouts, sample_rollouts
from roast_tl.scaling import l2_normalize, max_norm, softmax_scale
from roast_tl.tasks.base import Task, TaskItem
from roast_tl.vector import SteeringVector
from tests.tiny_model import (
    EMBED_HOOK,
    HOOK,
    PROMPTS,
    first_word_parity,
    make_rollout,
    make_tiny_model,
    make_tiny_model_in,
    random_vector,
    tiny_task,
    token_embeddings,
)

ESTIMATE = {
    "layers": [1, 2],
    "n_rollouts": 4,
    "temperature": 1.0,
    "top_p": 0.9,
    "seed": 3,
    "batch_size": 8,
    "progress": False,
}


def _cos(a, b):
    return torch.nn.functional.cosine_similarity(a, b, dim=0).item()


@pytest.fixture(scope="module")
def planted():
    """A tiny model whose embeddings plant direction u between each group's right and wrong token.

    Eight groups differ along u with skewed magnitudes (0.5 to 4); a ninth, inconsistent group
    differs by 200 along a random direction z. ROAST's grouped mean must find u; a plain mean
    follows z.
    """
    model = make_tiny_model(seed=1)
    tokenizer = model.tokenizer
    gen = torch.Generator().manual_seed(7)
    d = model.cfg.d_model
    u = torch.nn.functional.normalize(torch.randn(d, generator=gen), dim=0)
    z = torch.nn.functional.normalize(torch.randn(d, generator=gen), dim=0)
    embed = token_embeddings(model)
    magnitudes = [0.5, 1.0, 2.0, 4.0, 0.5, 1.0, 2.0, 4.0]
    ids = tokenizer.convert_tokens_to_ids(["review", ":", "the", "movie"])
    rollouts, items = [], []
    with torch.no_grad():
        for g in range(9):
            right = tokenizer.convert_tokens_to_ids(str(g))
            wrong = tokenizer.convert_tokens_to_ids(str(g + 9))
            base = torch.randn(d, generator=gen)
            noise = 0.05 * torch.randn(d, generator=gen)
            diff = magnitudes[g] * u if g < 8 else 200.0 * z
            embed[right] = base + diff / 2 + noise
            embed[wrong] = base - diff / 2
            item = TaskItem(f"g{g}", "review : the movie", str(g), str(g))
            items.append(item)
            samples = [(right, True), (right, True), (wrong, False), (wrong, False), (wrong, False)]
            rollouts += [
                make_rollout(item.id, ok, index=k, prompt_token_ids=ids, completion_token_ids=[tok])
                for k, (tok, ok) in enumerate(samples)
            ]
    task = Task("planted", {"train": items}, extract_answer=str.strip, max_new_tokens=1)
    return model, task, rollouts, u, z


@pytest.mark.parametrize("scaler", [max_norm, l2_normalize], ids=lambda f: f.__name__)
def test_grouped_estimate_recovers_the_planted_direction_and_plain_does_not(planted, scaler):
    model, task, rollouts, u, z = planted
    settings = {"hook_names": [EMBED_HOOK], "scaler": scaler, "progress": False}
    grouped = roast_tl.estimate_from_rollouts(model, task, rollouts, **settings)
    plain = roast_tl.estimate_from_rollouts(model, task, rollouts, grouped=False, **settings)
    assert _cos(grouped[EMBED_HOOK], u) > 0.95
    assert _cos(plain[EMBED_HOOK], u) < 0.5  # the one huge, inconsistent prompt takes over
    assert _cos(plain[EMBED_HOOK], z) > 0.9
    assert grouped.metadata["n_prompts"] == 9 and grouped.metadata["n_pairs"] == 9 * 6
    assert grouped.metadata["scaler"] == scaler.__name__ and plain.metadata["grouped"] is False


def test_one_call_equals_the_stages(planted):
    model, task, rollouts, _, _ = planted
    items = task.items("train")[2:]
    with pytest.warns(RoastWarning, match="match none of the 7 items"):  # the 2 items left out
        one_call = roast_tl.estimate_from_rollouts(
            model,
            task,
            rollouts,
            items=items,
            hook_names=[EMBED_HOOK],
            read_at="response_mean",
            scaler=softmax_scale,
            read_batch_size=5,
            progress=False,
        )
    with pytest.warns(RoastWarning, match="match none of the 7 items"):
        contrasts = roast_tl.build_contrast_set(rollouts, items, tokenizer=model.tokenizer)
    means = roast_tl.contrast_means(
        model, contrasts, [EMBED_HOOK], read_at="response_mean", progress=False
    )
    stages = roast_tl.vector_from_means(means, scaler=softmax_scale)
    torch.testing.assert_close(one_call[EMBED_HOOK], stages[EMBED_HOOK])
    assert one_call.metadata["n_prompts"] == 7  # only the items given
    assert one_call.metadata["read_at"] == "response_mean"


def test_vector_from_means_grouped_and_plain_hand_computed():
    # Group differences mu = [2, 0] and [0, -1]; group 1 has 3 pairs of weight 0.5.
    means = ContrastMeans(
        item_ids=["a", "b"],
        positive={"h": torch.tensor([[3.0, 1.0], [0.0, 0.0]])},
        negative={"h": torch.tensor([[1.0, 1.0], [0.0, 1.0]])},
        weights=torch.tensor([1.0, 0.5]),
        n_pairs=torch.tensor([1.0, 3.0]),
    )
    metadata = {"method": "test"}
    grouped = vector_from_means(means, metadata=metadata)
    # Grouped: S(mean(S([2, 0]), S([0, -1]))) = S([0.5, -0.5]) = [1, -1].
    assert grouped["h"].tolist() == [1.0, -1.0] and grouped.metadata == metadata
    # Plain: weights 1 * 1 and 0.5 * 3: (1 [2, 0] + 1.5 [0, -1]) / 2.5 = [0.8, -0.6] -> [1, -0.75].
    torch.testing.assert_close(
        vector_from_means(means, grouped=False)["h"], torch.tensor([1.0, -0.75])
    )


def test_vector_metadata_is_the_one_record_for_every_method(tiny_model):
    task = tiny_task()
    rollouts = [make_rollout("q0", ok, index=k) for k, ok in enumerate([True, True, True, False])]
    contrasts = build_contrast_set(rollouts, task.items("train"), tokenizer=tiny_model.tokenizer)
    metadata = vector_metadata(
        tiny_model,
        method="roast",
        task=task,
        hook_names=[HOOK],
        contrasts=contrasts,
        rollouts=rollouts,
        scaler=l2_normalize,
        read_at="last",
    )
    assert metadata == {
        "method": "roast",
        "model_name": tiny_model.cfg.model_name,
        "model_fingerprint": model_fingerprint(tiny_model),
        "d_model": 32,
        "n_layers": 3,
        "hook_names": [HOOK],
        "task": "parity",
        "roast_tl_version": roast_tl.__version__,
        "n_prompts": 1,
        "n_pairs": 3,
        "group_counts": {"no_rollouts": 5, "rollouts": 1},
        "n_rollouts_total": 4,
        "rollout_accuracy": 0.75,
        "scaler": "l2_normalize",  # callables are recorded by name
        "read_at": "last",
    }


def _no_sampling(*args, **kwargs):
    raise AssertionError("this call must not sample")


def test_estimate_records_its_settings_resumes_and_is_bit_reproducible(
    tiny_model, tmp_path, monkeypatch
):
    task = tiny_task()
    path = tmp_path / "rollouts.jsonl"
    first = roast_tl.estimate(tiny_model, task, rollouts_path=path, **ESTIMATE)
    saved = load_rollouts(path)
    assert len(saved) == 6 * 4 and {r.correct for r in saved} == {True, False}
    assert first.hook_names == ["blocks.1.hook_resid_post", "blocks.2.hook_resid_post"]
    expected = {
        "method": "roast",
        "model_name": tiny_model.cfg.model_name,
        "task": "parity",
        "site": "resid_post",
        "read_at": "last",
        "scaler": "max_norm",
        "grouped": True,
        "strict": False,
        "fallback_weight": 0.5,
        "seed": 3,
        "n_rollouts": 4,
        "temperature": 1.0,
        "top_p": 0.9,
        "n_items": 6,
        "n_rollouts_total": 24,
    }
    assert {k: first.metadata[k] for k in expected} == expected
    assert first.metadata["rollout_accuracy"] == sum(r.correct for r in saved) / 24
    contrasts = build_contrast_set(saved, task.items("train"), tokenizer=tiny_model.tokenizer)
    report = YieldReport.build(
        saved, task.items("train"), contrasts, gold_check=check_gold(task, task.items("train"))
    )
    assert first.metadata["yield_report"] == report.as_dict()
    assert report.gold_check.failed == 0 and report.problems() == []  # no LowYieldWarning

    monkeypatch.setattr(roast_tl.generation, "generate_tokens", _no_sampling)
    resumed = roast_tl.estimate(tiny_model, task, rollouts_path=path, **ESTIMATE)
    assert all(torch.equal(first[name], resumed[name]) for name in first)
    monkeypatch.undo()

    # Fresh sampling with the same seed, in batches of another size: the same bits.
    for batch_size in (8, 24):
        again = roast_tl.estimate(tiny_model, task, **{**ESTIMATE, "batch_size": batch_size})
        assert all(torch.equal(first[name], again[name]) for name in first)


def test_same_seed_same_pairs_whatever_the_batch_size(tiny_model):
    task = tiny_task()
    items = task.items("train")

    def pairs(seed, batch_size):
        rollouts = sample_rollouts(
            tiny_model, task, items, n_rollouts=4, seed=seed, batch_size=batch_size, progress=False
        )
        return build_contrast_set(rollouts, items, tokenizer=tiny_model.tokenizer)

    first = pairs(3, 8)
    assert pairs(3, 24) == first
    assert first.groups  # some prompt has both a right and a wrong rollout
    assert pairs(4, 8) != first


def test_strict_estimate_with_no_contrast_pair_says_why(tiny_model):
    # Every rollout is graded correct, so strict mode leaves no prompt with a pair.
    items = [TaskItem(f"q{i}", p, "yes", "yes", "no") for i, p in enumerate(["a", "b", "c"])]
    task = Task("always_right", {"train": items}, extract_answer=lambda s: "yes", max_new_tokens=2)
    with pytest.warns(LowYieldWarning, match="rollout accuracy is 1: all 6 rollouts"):
        with pytest.raises(ValueError, match=r"contrast set is empty.*'skipped_strict': 3"):
            roast_tl.estimate(
                tiny_model, task, layers=[1], n_rollouts=2, strict=True, progress=False
            )


def test_bad_sites_and_hook_names_fail_before_any_sampling(tiny_model, monkeypatch):
    monkeypatch.setattr(roast_tl.generation, "generate_tokens", _no_sampling)
    task = tiny_task()
    with pytest.raises(ValueError, match="unknown hook site 'resid'"):
        roast_tl.estimate(tiny_model, task, site="resid", progress=False)
    with pytest.raises(ValueError, match="unknown hook name"):
        roast_tl.estimate(tiny_model, task, hook_names=["blocks.1.hook_resid_pots"], progress=False)


def _hook_warnings(caught):
    return [w for w in caught if "forward hooks already attached" in str(w.message)]


def test_estimate_from_rollouts_inside_a_steer_block_warns_and_records_it(planted):
    model, task, rollouts, _, _ = planted
    settings = {"hook_names": [HOOK], "progress": False}
    plain = roast_tl.estimate_from_rollouts(model, task, rollouts, **settings)
    assert "other_hooks_attached" not in plain.metadata
    upstream = SteeringVector({EMBED_HOOK: torch.ones(32)}, {"model_name": model.cfg.model_name})
    with roast_tl.steer(model, upstream, 3.0, positions="all"):
        with pytest.warns(RoastWarning, match="estimate_from_rollouts runs with forward hooks"):
            inside = roast_tl.estimate_from_rollouts(model, task, rollouts, **settings)
    assert inside.metadata["other_hooks_attached"] is True
    assert not torch.equal(inside[HOOK], plain[HOOK])  # the enclosing hook acted on the reads
    assert {k: v for k, v in inside.metadata.items() if k != "other_hooks_attached"} == (
        plain.metadata
    )


def test_estimate_inside_a_steer_block_warns_once_and_alpha_zero_changes_no_bit():
    model = make_tiny_model_in(torch.bfloat16)  # also: estimate runs on a bfloat16 model
    task = tiny_task()
    settings = {**ESTIMATE, "layers": [1], "n_rollouts": 2}
    plain = roast_tl.estimate(model, task, **settings)
    assert all(torch.isfinite(t).all() for _, t in plain.items())
    with roast_tl.steer(model, random_vector(model), 0.0):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            inside = roast_tl.estimate(model, task, **settings)
    assert len(_hook_warnings(caught)) == 1
    assert issubclass(_hook_warnings(caught)[0].category, RoastWarning)
    assert inside.metadata == {**plain.metadata, "other_hooks_attached": True}
    assert all(torch.equal(inside[name], plain[name]) for name in plain)  # alpha 0: no change
    with roast_tl.steer(model, plain, 2.0):  # the bfloat16 model can be steered by it
        assert roast_tl.generate(model, ["the movie was good"], max_new_tokens=2)


@pytest.mark.parametrize(
    "arguments,message",
    [
        ({"batch_size": 0}, "batch_size must be at least 1, got 0"),
        ({"read_batch_size": -1}, "read_batch_size must be at least 1, got -1"),
    ],
)
def test_batch_sizes_below_one_fail_before_any_sampling(
    tiny_model, monkeypatch, arguments, message
):
    monkeypatch.setattr(roast_tl.generation, "generate_tokens", _no_sampling)
    with pytest.raises(ValueError, match=message):
        roast_tl.estimate(tiny_model, tiny_task(), layers=[1], progress=False, **arguments)
    rollouts = [make_rollout("q0", True), make_rollout("q0", False, index=1)]
    with pytest.raises(ValueError, match="read_batch_size must be at least 1, got 0"):
        roast_tl.estimate_from_rollouts(
            tiny_model, tiny_task(), rollouts, layers=[1], read_batch_size=0, progress=False
        )


def _first_word(text):
    """A broken grader for the parity task: the first word itself, never "even" or "odd"."""
    return text.split()[0] if text.split() else None


def _low_yield(caught):
    return [str(w.message) for w in caught if issubclass(w.category, LowYieldWarning)]


def test_a_broken_grader_shows_in_the_yield_report_and_the_warnings(tiny_model, capsys):
    """Issue 11: a grader that marked every right answer wrong left an all-fallback vector,
    silently. Now the self-check, the rollout accuracy and the fallbacks each warn, and the
    printed report shows what the grader extracted."""
    parity = tiny_task()
    broken = Task("broken", parity.splits, _first_word, parity.max_new_tokens)
    settings = {**ESTIMATE, "layers": [1], "progress": True}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        vector = roast_tl.estimate(tiny_model, broken, **settings)
    messages = _low_yield(caught)
    assert len(messages) == 3
    assert messages[0].startswith(
        "the grader marks none of the 6 items' own gold_completion correct (e.g. q0 'good' -> "
        "'good' (gold 'even'))"
    )
    assert messages[1].startswith("rollout accuracy is 0: all 24 rollouts are graded wrong")
    assert messages[2].startswith("6 of 6 contrast groups are fallbacks {'gold_fallback': 6}")

    report = YieldReport.from_dict(vector.metadata["yield_report"])
    assert report.n_rollouts == 24 and report.rollout_accuracy == 0.0
    assert report.pass_rate_histogram["0"] == 6 and report.group_counts == {"gold_fallback": 6}
    assert report.gold_check.failed == 6 and report.correct_examples == ()
    assert [e.answer for e in report.wrong_examples] == [
        e.completion.split()[0] for e in report.wrong_examples
    ]
    printed = capsys.readouterr().out
    assert str(report) in printed
    assert "gold self-check: 0 of 6 graded correct, e.g. q0 'good' -> 'good' (gold 'even')" in (
        printed
    )
    assert "prompts per path: rollouts 0 (0%), gold_fallback 6 (100%)" in printed

    # The same rollouts with the right grader: no warning, and a real contrast for most prompts.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        healthy = roast_tl.estimate(tiny_model, parity, **{**settings, "progress": False})
    assert _low_yield(caught) == [] and capsys.readouterr().out == ""
    assert healthy.metadata["yield_report"]["group_counts"] == {"rollouts": 6}


def test_the_gold_self_check_warns_before_any_sampling(tiny_model, monkeypatch):
    parity = tiny_task()
    items = parity.items("train")
    # "good" is even; two items' gold completions are odd-length words the grader calls "odd".
    regold = [replace(i, gold_completion="bad") if i.id in ("q1", "q4") else i for i in items]
    task = Task("regold", {"train": regold}, first_word_parity, parity.max_new_tokens)
    monkeypatch.setattr(roast_tl.generation, "generate_tokens", _no_sampling)
    with pytest.warns(LowYieldWarning) as caught:
        with pytest.raises(AssertionError, match="must not sample"):
            roast_tl.estimate(tiny_model, task, layers=[1], progress=False)
    (message,) = [str(w.message) for w in caught]
    assert message.startswith(
        "the grader marks 2 of 6 items' own gold_completion wrong (e.g. q1 'bad' -> 'odd' "
        "(gold 'even'))"
    )


def test_n_rollouts_1_warns_that_every_group_is_a_fallback(tiny_model):
    settings = {**ESTIMATE, "layers": [1], "n_rollouts": 1}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        vector = roast_tl.estimate(tiny_model, tiny_task(), **settings)
    messages = _low_yield(caught)
    assert messages[0].startswith("n_rollouts < 2: no prompt has 2 rollouts")
    assert messages[-1].startswith("6 of 6 contrast groups are fallbacks")
    assert vector.metadata["yield_report"]["rollouts_per_prompt"] == [1, 1]


def test_low_yield_warnings_filter_like_any_warning(tiny_model):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", category=LowYieldWarning)
        roast_tl.estimate(tiny_model, tiny_task(), **{**ESTIMATE, "layers": [1], "n_rollouts": 1})
    assert caught == []


def test_estimate_from_rollouts_reports_and_checks_the_gold_too(planted, tmp_path):
    model, task, rollouts, _, _ = planted
    vector = roast_tl.estimate_from_rollouts(
        model, task, rollouts, hook_names=[EMBED_HOOK], progress=False
    )
    report = YieldReport.from_dict(vector.metadata["yield_report"])
    assert report.gold_check.n_items == 9 and report.gold_check.failed == 0
    assert (report.n_rollouts, report.n_correct, report.n_pairs) == (45, 18, 54)
    assert report.pass_rate_histogram["(.25,.5]"] == 9
    # The report survives save and load, as JSON in the safetensors header.
    loaded = SteeringVector.load(vector.save(tmp_path / "v.safetensors"), model)
    assert loaded.metadata["yield_report"] == vector.metadata["yield_report"]
    assert str(YieldReport.from_dict(loaded.metadata["yield_report"])) == str(report)
    assert json.dumps(loaded.metadata["yield_report"], allow_nan=False)

    always_wrong = Task("wrong", task.splits, lambda s: None, 1)
    with pytest.warns(LowYieldWarning) as caught:
        roast_tl.estimate_from_rollouts(
            model, always_wrong, rollouts, hook_names=[EMBED_HOOK], progress=False
        )
    assert "marks none of the 9 items' own gold_completion correct" in str(caught[0].message)


def test_a_broken_grader_on_a_from_pairs_task_fires_the_yield_warnings(tiny_model, capsys):
    """Issue 11's "done when": a deliberately broken grader (it compares the completion with the
    item's id, a typical slip) on a task built with Task.from_pairs shows in the printed yield
    report and in every LowYieldWarning that applies."""
    pairs = [(prompt, "good") for prompt in PROMPTS[:5]] + [("the movie was bad 1", "bad")]
    pairs += [("review : hated it", "bad"), ("this food was great", "good")]

    def broken(completion: str, item: TaskItem) -> bool:
        return completion.strip() == item.id

    task = Task.from_pairs(pairs, grader=broken, name="words", n_dev=1, n_test=1, max_new_tokens=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        vector = roast_tl.estimate(
            tiny_model, task, **{**ESTIMATE, "layers": [1], "progress": True}
        )
    messages = _low_yield(caught)
    assert len(messages) == 3
    assert messages[0].startswith("the grader marks none of the 6 items' own gold_completion")
    assert messages[1].startswith("rollout accuracy is 0: all 24 rollouts are graded wrong")
    assert messages[2].startswith("6 of 6 contrast groups are fallbacks {'gold_fallback': 6}")
    report = YieldReport.from_dict(vector.metadata["yield_report"])
    assert report.gold_check.failed == 6 and report.group_counts == {"gold_fallback": 6}
    assert all(e.answer is None for e in report.wrong_examples)  # a plain function records none
    printed = capsys.readouterr().out
    assert str(report) in printed and "gold self-check: 0 of 6 graded correct" in printed
    # The shipped grader that fits these answers: the self-check passes.
    fixed = Task.from_pairs(pairs, grader="contains", name="words", n_dev=1, n_test=1)
    assert check_gold(fixed, fixed.items("train")).failed == 0


def test_estimate_records_the_chat_setting(tiny_model, monkeypatch):
    task = tiny_task(n_train=3)
    settings = {**ESTIMATE, "layers": [1], "n_rollouts": 2}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LowYieldWarning)
        plain = roast_tl.estimate(tiny_model, task, **settings)
        assert plain.metadata["chat"] is False  # the tiny tokenizer has no template
        template = "{% for m in messages %}review : {{ m['content'] }}{% endfor %} answer :"
        monkeypatch.setattr(tiny_model.tokenizer, "chat_template", template, raising=False)
        assert roast_tl.estimate(tiny_model, task, **settings).metadata["chat"] is True
        forced = roast_tl.estimate(tiny_model, task, **settings, chat=False)
        assert forced.metadata["chat"] is False
        rollouts = roast_tl.sample_rollouts(
            tiny_model, task, task.items("train"), n_rollouts=2, seed=3, temperature=1.0, chat=False
        )
        from_rollouts = roast_tl.estimate_from_rollouts(
            tiny_model, task, rollouts, layers=[1], progress=False
        )
    assert from_rollouts.metadata["chat"] is False
