"""compare: alpha picked on dev only (0 included), unsteered vs steered on test, a table."""

import pytest
import torch

import roast_tl
from roast_tl.compare import Comparison, compare, result_table
from roast_tl.evaluate import EvalResult, evaluate, pick_alpha
from roast_tl.vector import SteeringVector
from tests.tiny_model import HOOK, random_vector, tiny_task


def test_result_table_lines_up_accuracy_interval_and_n():
    table = result_table({"unsteered": EvalResult(0.25, 0.1, 0.5, 40)})
    assert table.splitlines()[-1] == (
        "| unsteered                    |    0.250 | [0.100, 0.500] |   40 |"
    )


def test_compare_picks_alpha_on_dev_and_evaluates_test_both_ways(tiny_model):
    task = tiny_task(n_train=2, n_dev=3, n_test=4)
    vector = random_vector(tiny_model, scale=8.0)
    result = compare(tiny_model, task, vector, alphas=[1.0, 4.0], progress=False)
    dev = task.items("dev")
    expected_curve = {
        a: evaluate(tiny_model, task, vector, a, items=dev, progress=False).accuracy
        for a in (0.0, 1.0, 4.0)
    }
    assert result.dev_accuracy == expected_curve
    assert result.alpha == pick_alpha(expected_curve)
    test = task.items("test")
    unsteered = evaluate(tiny_model, task, items=test, progress=False)
    steered = evaluate(tiny_model, task, vector, result.alpha, items=test, progress=False)
    assert result.unsteered.records == unsteered.records
    assert result.steered.records == steered.records
    assert result.steered.n == result.unsteered.n == 4
    assert set(result.seconds) == {"alpha_selection_s", "test_eval_s"}


def test_a_vector_that_changes_nothing_is_not_applied(tiny_model):
    """All-zero vector: every alpha ties on dev, so pick_alpha keeps alpha 0."""
    task = tiny_task(n_train=2, n_dev=2, n_test=2)
    zero = SteeringVector(
        {HOOK: torch.zeros(tiny_model.cfg.d_model)}, {"model_name": tiny_model.cfg.model_name}
    )
    result = compare(tiny_model, task, zero, alphas=[2.0, 8.0], progress=False)
    assert result.alpha == 0.0 and set(result.dev_accuracy) == {0.0, 2.0, 8.0}
    assert len(set(result.dev_accuracy.values())) == 1
    assert result.steered.records == result.unsteered.records


def test_the_result_prints_as_the_dev_curve_and_a_table(tiny_model):
    task = tiny_task(n_train=2, n_dev=2, n_test=2)
    result = roast_tl.compare(
        tiny_model, task, random_vector(tiny_model), alphas=[1.0], progress=False
    )
    lines = str(result).splitlines()
    assert repr(result) == str(result)
    curve = result.dev_accuracy
    assert lines[0] == f"dev accuracy by alpha: 0: {curve[0.0]:.3f}, 1: {curve[1.0]:.3f}"
    assert lines[2].startswith("| test split")
    u = result.unsteered
    assert lines[4] == (
        f"| unsteered                    | {u.accuracy:8.3f} | [{u.ci_low:.3f}, {u.ci_high:.3f}] "
        f"| {u.n:4d} |"
    )
    assert lines[5].startswith(f"| ROAST steered (alpha={result.alpha:g})")
    assert isinstance(result, Comparison)


def test_compare_refuses_no_alphas_and_missing_splits(tiny_model):
    task = tiny_task(n_train=2, n_dev=2, n_test=2)
    vector = random_vector(tiny_model)
    with pytest.raises(ValueError, match="compare needs at least one alpha"):
        compare(tiny_model, task, vector, alphas=[], progress=False)
    with pytest.raises(ValueError, match="compare needs dev and test items; .* 0 dev and 2 test"):
        compare(tiny_model, task, vector, dev=[], progress=False)
