"""Shared fixtures: a tiny random Llama bridge built offline, and a no-leftover-hooks check."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch

from tests.tiny_model import make_tiny_model


@pytest.fixture(scope="session")
def tiny_model():
    """A 3-layer, d_model 32 random Llama TransformerBridge with a word-level tokenizer."""
    return make_tiny_model()


@pytest.fixture(autouse=True)
def no_hooks_left(request):
    """After each test, assert that no hook is left on any hook point of the tiny model."""
    yield
    if "tiny_model" in request.fixturenames:
        model = request.getfixturevalue("tiny_model")
        leftover = [name for name, hp in model.hook_dict.items() if hp._forward_hooks]
        assert not leftover, f"hooks left attached after the test: {leftover[:5]}"


@pytest.fixture(scope="module")
def one_thread():
    """Tiny-model generation is fastest on one thread, most of all when other jobs share the cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def rng():
    return torch.Generator().manual_seed(0)
