"""SteeringVector: construction, TL hook lists, model checks, save/load and refusing bad files.

That saves are atomic is tested for every writer in test_io.
"""

import json

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

from roast_tl.hooks import SteeringHook
from roast_tl.vector import FORMAT_VERSION, SteeringVector
from tests.tiny_model import HOOK, construct_unchecked

OTHER = "blocks.0.hook_resid_post"


def _vec(width=32, name="tiny"):
    gen = torch.Generator().manual_seed(0)
    return SteeringVector(
        {HOOK: torch.randn(width, generator=gen), OTHER: torch.randn(width, generator=gen)},
        {"model_name": name, "n_prompts": 3, "group_counts": {"rollouts": 3}},
    )


def _save_raw(path, tensors, metadata):
    save_file(tensors, str(path), metadata=metadata)
    return path


def test_mapping_interface_and_repr():
    v = _vec()
    assert v.hook_names == [HOOK, OTHER] and list(v) == [HOOK, OTHER] and len(v) == 2
    assert [name for name, _ in v.items()] == [HOOK, OTHER]
    assert repr(v) == f"SteeringVector(model='tiny', widths={{'{HOOK}': 32, '{OTHER}': 32}})"
    with pytest.raises(KeyError, match=r"no vector for hook 'blocks\.9\.hook_resid_post'"):
        v["blocks.9.hook_resid_post"]


def test_constructor_validates():
    with pytest.raises(ValueError, match="at least one"):
        SteeringVector({})
    with pytest.raises(ValueError, match="NaN or inf"):
        SteeringVector({HOOK: torch.tensor([float("nan")])})
    # Ill-typed input, as users (who run without the test-time type checker) may pass it:
    with pytest.raises(ValueError, match=r"must be a 1-D tensor \(d_act,\), got \(2, 3\)"):
        construct_unchecked(SteeringVector, {HOOK: torch.ones(2, 3)})
    with pytest.raises(ValueError, match="must be a 1-D tensor.*got list"):
        construct_unchecked(SteeringVector, {HOOK: [1.0, 2.0]})
    with pytest.raises(TypeError, match="hook names must be strings"):
        construct_unchecked(SteeringVector, {3: torch.ones(2)})


def test_to_casts_every_vector_and_keeps_metadata():
    v = _vec()
    half = v.to(dtype=torch.float16)
    assert all(t.dtype == torch.float16 for _, t in half.items())
    assert half.metadata == v.metadata and half.hook_names == v.hook_names
    assert v[HOOK].dtype == torch.float32  # the original is untouched


def test_fwd_hooks_is_a_tl_hook_list():
    v = _vec()
    hooks = v.fwd_hooks(4.0, positions="all", mode="multiply")
    assert [name for name, _ in hooks] == [HOOK, OTHER]
    for name, hook in hooks:
        assert isinstance(hook, SteeringHook)
        assert (hook.alpha, hook.positions, hook.mode, hook.name) == (4.0, "all", "multiply", name)
        assert torch.equal(hook.vector, v[name])


def test_round_trip(tmp_path, tiny_model):
    v = _vec(name=tiny_model.cfg.model_name)
    path = v.save(tmp_path / "v.safetensors")
    back = SteeringVector.load(path, tiny_model)
    assert back.hook_names == v.hook_names
    for name in v:
        assert torch.equal(back[name], v[name])
    assert back.metadata == {**v.metadata, "format_version": FORMAT_VERSION}


def test_check_model_refuses_wrong_width(tmp_path, tiny_model):
    path = _vec(width=16, name=tiny_model.cfg.model_name).save(tmp_path / "v.safetensors")
    with pytest.raises(ValueError, match="width 16 but this model's activations there have width"):
        SteeringVector.load(path, tiny_model)


def test_check_model_refuses_another_model_unless_allowed(tmp_path, tiny_model):
    path = _vec(name="org/other-model").save(tmp_path / "v.safetensors")
    with pytest.raises(ValueError, match="made for model 'org/other-model'.*allow_other_model"):
        SteeringVector.load(path, tiny_model)
    assert SteeringVector.load(path, tiny_model, allow_other_model=True).hook_names == [HOOK, OTHER]
    SteeringVector({HOOK: torch.ones(32)}).check_model(tiny_model)  # no model name: no check


def test_unknown_hook_name_loads_alone_but_not_onto_a_model(tmp_path, tiny_model):
    typo = "blocks.2.hook_resid_psot"
    path = SteeringVector(
        {typo: torch.ones(tiny_model.cfg.d_model)}, {"model_name": tiny_model.cfg.model_name}
    ).save(tmp_path / "v.safetensors")
    assert SteeringVector.load(path).hook_names == [typo]
    with pytest.raises(ValueError, match=r"did you mean.*blocks\.2\.hook_resid_post"):
        SteeringVector.load(path, tiny_model)


@pytest.fixture(scope="module")
def saved_bytes(tmp_path_factory):
    v = _vec()
    v.metadata["note"] = "x" * 50
    return v.save(tmp_path_factory.mktemp("vec") / "v.safetensors").read_bytes()


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_a_file_truncated_anywhere_is_a_clear_error(tmp_path, saved_bytes, data):
    cut = data.draw(st.integers(0, len(saved_bytes) - 1))
    path = tmp_path / "cut.safetensors"
    path.write_bytes(saved_bytes[:cut])
    with pytest.raises(ValueError, match="corrupt or truncated"):
        SteeringVector.load(path)


def test_missing_garbage_and_foreign_files_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no steering vector file"):
        SteeringVector.load(tmp_path / "missing.safetensors")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    with pytest.raises(ValueError, match="corrupt or truncated"):
        SteeringVector.load(garbage)
    weights = _save_raw(tmp_path / "weights.safetensors", {"w": torch.ones(4)}, None)
    with pytest.raises(ValueError, match="not a roast_tl steering vector"):
        SteeringVector.load(weights)


@pytest.mark.parametrize(
    "version,message",
    [
        (None, "missing or malformed format_version"),
        ("1", "missing or malformed format_version"),
        (1.0, "missing or malformed format_version"),
        (FORMAT_VERSION + 1, "newer than this roast_tl understands"),
    ],
)
def test_missing_malformed_or_newer_format_version_is_refused(tmp_path, version, message):
    meta = {"model_name": "m"} if version is None else {"format_version": version}
    path = _save_raw(
        tmp_path / "v.safetensors", {HOOK: torch.ones(4)}, {"roast_tl": json.dumps(meta)}
    )
    with pytest.raises(ValueError, match=message):
        SteeringVector.load(path)


def test_metadata_hook_list_must_match_the_tensors(tmp_path):
    meta = {"format_version": FORMAT_VERSION, "tensor_order": [HOOK, OTHER]}
    path = _save_raw(
        tmp_path / "v.safetensors", {HOOK: torch.ones(4)}, {"roast_tl": json.dumps(meta)}
    )
    with pytest.raises(ValueError, match="metadata lists hooks"):
        SteeringVector.load(path)
