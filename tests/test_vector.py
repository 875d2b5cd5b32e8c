"""SteeringVector: construction, TL hook lists, model checks, save/load and refusing bad files.

That saves are atomic is tested for every writer in test_io.
"""

import json
import os
import warnings

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

import roast_tl.vector
from roast_tl._fingerprint import model_fingerprint
from roast_tl._warnings import RoastWarning
from roast_tl.hooks import SteeringHook
from roast_tl.vector import FORMAT_VERSION, SteeringVector
from tests.tiny_model import HOOK, construct_unchecked, make_tiny_model

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


@pytest.mark.parametrize("dtype", [torch.int32, torch.int64, torch.bool, torch.uint8])
def test_integer_and_bool_vectors_are_refused(dtype):
    with pytest.raises(TypeError, match=f"has dtype {dtype}; steering vectors must be floating"):
        construct_unchecked(SteeringVector, {HOOK: torch.ones(4, dtype=dtype)})


def test_a_vector_must_be_finite_in_float32_not_only_in_its_own_dtype():
    huge = torch.full((4,), 1e300, dtype=torch.float64)  # finite in fp64, inf once cast to fp32
    assert torch.isfinite(huge).all() and not torch.isfinite(huge.float()).all()
    with pytest.raises(ValueError, match=r"beyond the float32 range \(max \|v\| = 1e\+300\)"):
        SteeringVector({HOOK: huge})
    edge = torch.full((4,), 3.0e38, dtype=torch.float64)  # just inside the fp32 range
    assert SteeringVector({HOOK: edge})[HOOK].dtype == torch.float64


def test_to_casts_every_vector_and_keeps_metadata():
    v = _vec()
    v.allow_other_model = True
    half = v.to(dtype=torch.float16)
    assert all(t.dtype == torch.float16 for _, t in half.items())
    assert half.metadata == v.metadata and half.hook_names == v.hook_names
    assert half.allow_other_model is True
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
    with pytest.raises(ValueError) as refused:
        SteeringVector.load(path, tiny_model)
    message = str(refused.value)
    assert message.startswith(
        f"this vector was made for model 'org/other-model'; this model is "
        f"'{tiny_model.cfg.model_name}'"
    )
    assert "allow_other_model=True" in message and "--allow-other-model" in message
    assert SteeringVector.load(path, tiny_model, allow_other_model=True).hook_names == [HOOK, OTHER]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a vector built in memory: no name, no check, no warning
        SteeringVector({HOOK: torch.ones(32)}).check_model(tiny_model)


def test_allow_other_model_is_remembered_by_the_vector_but_never_saved(tmp_path, tiny_model):
    path = _vec(name="/old/path/to/model").save(tmp_path / "v.safetensors")
    allowed = SteeringVector.load(path, tiny_model, allow_other_model=True)
    assert allowed.allow_other_model is True
    allowed.check_model(tiny_model)  # a later check (steer, evaluate) passes too
    plain = SteeringVector.load(path)
    assert plain.allow_other_model is False
    with pytest.raises(ValueError, match="made for model '/old/path/to/model'"):
        plain.check_model(tiny_model)
    plain.check_model(tiny_model, allow_other_model=True)  # or allowed at the call
    assert "allow_other_model" not in allowed.metadata
    resaved = SteeringVector.load(allowed.save(tmp_path / "again.safetensors"))
    assert resaved.allow_other_model is False and "allow_other_model" not in resaved.metadata


def test_the_same_weights_under_another_name_are_the_same_model(tmp_path, tiny_model):
    # A copied model folder loads under another name; the recorded fingerprint still matches.
    meta = {"model_name": "/old/copy/of/tiny", "model_fingerprint": model_fingerprint(tiny_model)}
    path = SteeringVector({HOOK: torch.ones(32)}, meta).save(tmp_path / "v.safetensors")
    assert SteeringVector.load(path, tiny_model).hook_names == [HOOK]
    other_weights = make_tiny_model(seed=5)  # same layout, other weights: another fingerprint
    other_weights.cfg.model_name = "/old/copy/of/tiny-finetuned"
    with pytest.raises(ValueError, match="made for model '/old/copy/of/tiny'"):
        SteeringVector.load(path, other_weights)


@pytest.mark.parametrize("model_name", [None, ""])
def test_a_loaded_vector_without_a_model_name_warns_once(tmp_path, tiny_model, model_name):
    meta = {} if model_name is None else {"model_name": model_name}
    path = SteeringVector({HOOK: torch.ones(32)}, meta).save(tmp_path / "v.safetensors")
    with pytest.warns(RoastWarning, match=r"v\.safetensors records no model_name.*cannot check"):
        vector = SteeringVector.load(path, tiny_model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per vector, not once per steer/evaluate
        vector.check_model(tiny_model)
        SteeringVector.load(path, tiny_model, allow_other_model=True)  # accepted knowingly


def test_a_model_name_that_is_not_a_string_is_refused(tmp_path):
    meta = {"format_version": FORMAT_VERSION, "model_name": 7}
    path = _save_raw(
        tmp_path / "v.safetensors", {HOOK: torch.ones(4)}, {"roast_tl": json.dumps(meta)}
    )
    with pytest.raises(ValueError, match=r"v\.safetensors: model_name must be a string, got 7"):
        SteeringVector.load(path)


def test_unknown_hook_name_loads_alone_but_not_onto_a_model(tmp_path, tiny_model):
    typo = "blocks.2.hook_resid_psot"
    path = SteeringVector(
        {typo: torch.ones(tiny_model.cfg.d_model)}, {"model_name": tiny_model.cfg.model_name}
    ).save(tmp_path / "v.safetensors")
    assert SteeringVector.load(path).hook_names == [typo]
    with pytest.raises(ValueError, match=r"did you mean.*blocks\.2\.hook_resid_post"):
        SteeringVector.load(path, tiny_model)


def test_a_vector_for_another_model_says_so_before_any_hook_name(tmp_path, tiny_model):
    wide = make_tiny_model(n_layers=2, d_model=64)  # another model: 2 layers, d_model 64
    vector = SteeringVector.from_direction(
        "blocks.2.hook_resid_post", torch.ones(32), model=tiny_model
    )
    assert vector.metadata["n_layers"] == 3 and vector.metadata["d_model"] == 32
    path = vector.save(tmp_path / "v.safetensors")
    with pytest.raises(ValueError) as refused:
        SteeringVector.load(path, wide)
    message = str(refused.value)
    assert message.startswith(
        f"this vector was made for model '{tiny_model.cfg.model_name}' (3 layers, d_model 32); "
        f"this model is '{wide.cfg.model_name}' (2 layers, d_model 64), so it cannot steer it"
    )
    assert message.index("made for model") < message.index("did you mean")


@pytest.mark.parametrize(
    "normalize,expected", [("max_norm", [0.75, -1.0]), ("l2", [0.6, -0.8]), (None, [3.0, -4.0])]
)
def test_from_direction_normalizes_as_asked(normalize, expected):
    direction = torch.tensor([3.0, -4.0], requires_grad=True)
    vector = SteeringVector.from_direction(HOOK, direction, normalize=normalize)
    torch.testing.assert_close(vector[HOOK], torch.tensor(expected))
    assert vector.metadata == {"method": "direction", "normalize": normalize, "hook_names": [HOOK]}
    as_dict = SteeringVector.from_direction({HOOK: direction, OTHER: -direction}, normalize=None)
    assert as_dict.hook_names == [HOOK, OTHER] and torch.equal(as_dict[OTHER], -as_dict[HOOK])
    with pytest.raises(TypeError, match="the direction is missing"):
        SteeringVector.from_direction(HOOK)
    with pytest.raises(ValueError, match="unknown normalize 'unit'"):
        build = SteeringVector.from_direction
        raw = getattr(build, "__wrapped__", None)  # without the test-time type check
        raw(SteeringVector, HOOK, direction, normalize="unit") if raw else build(
            HOOK, direction, normalize="unit"
        )


def test_select_keeps_the_named_hooks_and_their_metadata(tmp_path):
    vector = SteeringVector(
        {HOOK: torch.ones(4), OTHER: torch.zeros(4)},
        {"model_name": "m", "hook_names": [HOOK, OTHER]},
    )
    one = vector.select([OTHER])
    assert one.hook_names == [OTHER] and one.metadata["hook_names"] == [OTHER]
    assert one.metadata["model_name"] == "m" and vector.hook_names == [HOOK, OTHER]
    assert SteeringVector.load(one.save(tmp_path / "v.safetensors")).hook_names == [OTHER]
    assert vector.select(OTHER).hook_names == [OTHER]
    assert vector.select([OTHER, HOOK]).hook_names == [OTHER, HOOK]
    with pytest.raises(KeyError, match=r"no vector for hooks \['blocks.9.hook_resid_post'\]"):
        vector.select(["blocks.9.hook_resid_post"])


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
        (True, "missing or malformed format_version"),
        (0, "missing or malformed format_version"),
        (-5, "missing or malformed format_version"),
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


@pytest.mark.parametrize(
    "text,message",
    [
        ("{oops", "its roast_tl metadata is not valid JSON"),
        ("[1]", "its roast_tl metadata must be a JSON object, got list"),
        ("null", "its roast_tl metadata must be a JSON object, got NoneType"),
        ('"text"', "its roast_tl metadata must be a JSON object, got str"),
    ],
)
def test_metadata_that_is_not_a_json_object_names_the_file(tmp_path, text, message):
    path = _save_raw(tmp_path / "bad_meta.safetensors", {HOOK: torch.ones(4)}, {"roast_tl": text})
    with pytest.raises(ValueError, match=rf"bad_meta\.safetensors: {message}"):
        SteeringVector.load(path)


@pytest.mark.parametrize("dtype", [torch.int32, torch.int64, torch.bool])
def test_a_file_holding_integer_tensors_is_refused(tmp_path, dtype):
    meta = {"roast_tl": json.dumps({"format_version": FORMAT_VERSION})}
    path = _save_raw(tmp_path / "ints.safetensors", {HOOK: torch.ones(4, dtype=dtype)}, meta)
    with pytest.raises(ValueError, match=rf"ints\.safetensors: the vector for .* dtype {dtype}"):
        SteeringVector.load(path)


def test_a_file_holding_a_float64_vector_beyond_float32_is_refused(tmp_path, tiny_model):
    meta = {"roast_tl": json.dumps({"format_version": FORMAT_VERSION})}
    huge = torch.full((32,), 1e300, dtype=torch.float64)
    path = _save_raw(tmp_path / "f9.safetensors", {HOOK: huge}, meta)
    with pytest.raises(ValueError, match=r"f9\.safetensors: .*beyond the float32 range"):
        SteeringVector.load(path, tiny_model)


def test_saving_onto_a_folder_names_the_target_not_a_temp_file(tmp_path):
    target = tmp_path / "t1"
    target.mkdir()
    with pytest.raises(IsADirectoryError) as err:
        _vec().save(target)
    assert f"cannot save the steering vector to {target}: it is a folder" in str(err.value)
    assert ".tmp" not in str(err.value)
    assert os.listdir(tmp_path) == ["t1"] and os.listdir(target) == []  # nothing left behind


def test_a_failed_write_names_the_target_not_the_temp_file(tmp_path, monkeypatch):
    target = tmp_path / "v.safetensors"

    def refuse(path, payload):
        raise PermissionError(13, "Permission denied", str(tmp_path / ".v.safetensors.x1.tmp"))

    monkeypatch.setattr(roast_tl.vector, "atomic_write_bytes", refuse)
    with pytest.raises(PermissionError) as err:
        _vec().save(target)
    assert str(err.value) == (
        f"[Errno 13] cannot save the steering vector to {target}: Permission denied; pass a path "
        "in a folder you can write to"
    )


def test_saving_under_a_file_names_the_target(tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    target = blocker / "v.safetensors"
    with pytest.raises(OSError, match=f"cannot save the steering vector to {target}"):
        _vec().save(target)
    assert blocker.read_text() == "x"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_saving_into_a_read_only_folder_names_the_target(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(PermissionError) as err:
            _vec().save(folder / "v.safetensors")
    finally:
        folder.chmod(0o700)
    assert f"to {folder / 'v.safetensors'}" in str(err.value) and ".tmp" not in str(err.value)
