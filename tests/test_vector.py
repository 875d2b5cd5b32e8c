"""SteeringVector: save/load round trip, atomic writes, and refusing bad files."""

import json
import os

import pytest
import torch

from roast_tl.vector import FORMAT_VERSION, SteeringVector

HOOK = "blocks.1.hook_resid_post"


def _vec(width=32, name="tiny"):
    gen = torch.Generator().manual_seed(0)
    return SteeringVector(
        {HOOK: torch.randn(width, generator=gen), "blocks.0.hook_resid_post": torch.randn(width, generator=gen)},
        {"model_name": name, "n_prompts": 3, "group_counts": {"rollouts": 3}},
    )


def test_round_trip(tmp_path, tiny_model):
    v = _vec(name=tiny_model.cfg.model_name)
    path = v.save(tmp_path / "v.safetensors")
    back = SteeringVector.load(path, tiny_model)
    assert back.hook_names == v.hook_names
    for name in v:
        assert torch.equal(back[name], v[name])
    assert back.metadata["n_prompts"] == 3
    assert back.metadata["group_counts"] == {"rollouts": 3}
    assert back.metadata["format_version"] == FORMAT_VERSION


def test_load_refuses_wrong_width(tmp_path, tiny_model):
    path = _vec(width=16, name=tiny_model.cfg.model_name).save(tmp_path / "v.safetensors")
    with pytest.raises(ValueError, match="width 16.*width 32"):
        SteeringVector.load(path, tiny_model)


def test_load_refuses_other_model_unless_allowed(tmp_path, tiny_model):
    path = _vec(name="org/other-model").save(tmp_path / "v.safetensors")
    with pytest.raises(ValueError, match="org/other-model"):
        SteeringVector.load(path, tiny_model)
    assert SteeringVector.load(path, tiny_model, allow_other_model=True).hook_names


@pytest.mark.parametrize("cut", [0, 5, 20, -10])
def test_truncated_or_corrupt_file_is_a_clear_error(tmp_path, cut):
    path = _vec().save(tmp_path / "v.safetensors")
    data = path.read_bytes()
    path.write_bytes(data[:cut] if cut >= 0 else data[:cut])
    with pytest.raises(ValueError, match="corrupt or truncated"):
        SteeringVector.load(path)


def test_garbage_file_is_a_clear_error(tmp_path):
    path = tmp_path / "v.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    with pytest.raises(ValueError, match="corrupt or truncated"):
        SteeringVector.load(path)


def test_newer_format_version_is_refused(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "future.safetensors"
    meta = {"format_version": FORMAT_VERSION + 1, "model_name": "m"}
    save_file({HOOK: torch.ones(4)}, str(path), metadata={"roast_tl": json.dumps(meta)})
    with pytest.raises(ValueError, match="newer than this roast_tl understands"):
        SteeringVector.load(path)


def test_foreign_safetensors_is_refused(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "weights.safetensors"
    save_file({"w": torch.ones(4)}, str(path))
    with pytest.raises(ValueError, match="not a roast_tl steering vector"):
        SteeringVector.load(path)


def test_failed_save_keeps_the_old_file(tmp_path, monkeypatch):
    path = _vec().save(tmp_path / "v.safetensors")
    before = path.read_bytes()

    def crash(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        SteeringVector({HOOK: torch.zeros(32)}).save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["v.safetensors"]  # no temp file left


def test_constructor_validates():
    with pytest.raises(ValueError, match="at least one"):
        SteeringVector({})
    with pytest.raises(ValueError, match="1-D"):
        SteeringVector({HOOK: torch.ones(2, 3)})
    with pytest.raises(ValueError, match="NaN"):
        SteeringVector({HOOK: torch.tensor([float("nan")])})
    with pytest.raises(KeyError, match="no vector for hook"):
        _vec()["blocks.9.hook_resid_post"]
