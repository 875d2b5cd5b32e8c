"""Shared fixtures: the tiny random Llama model, one-thread torch, a no-leftover-hooks check."""

import os

# A safety net: nothing in the suite may reach a model hub (test_models removes it to check
# that roast_tl itself never sets it).
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch

from tests.tiny_model import make_tiny_model


@pytest.fixture(scope="session")
def tiny_model():
    """A 3-layer, d_model 32 random Llama model (the installed TL's backend), word-level tokens."""
    return make_tiny_model()


@pytest.fixture(autouse=True)
def no_hooks_left(request):
    """After each test that used the tiny model, no hook may be left on any of its hook points."""
    yield
    if "tiny_model" in request.fixturenames:
        model = request.getfixturevalue("tiny_model")
        leftover = [name for name, hp in model.hook_dict.items() if hp.has_hooks()]
        assert not leftover, f"hooks left attached after the test: {leftover[:5]}"


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """Run torch on one thread: on a shared 2-core machine two threads spin against the other
    jobs, and a tiny-model forward measured 0.6 s instead of 10 ms."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
