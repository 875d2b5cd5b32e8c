"""SAE latents as steering vectors and vectors explained in SAE latents (roast_tl.sae), with a
randomly initialised SAE built by SAELens itself (skipped where SAELens is not installed)."""

import pytest
import torch

from roast_tl.hooks import steer
from roast_tl.sae import decoder_cosines, explain_in_latents, latent_vector
from roast_tl.vector import SteeringVector
from tests.tiny_model import HOOK, PROMPTS, encode

sae_lens = pytest.importorskip("sae_lens", reason="SAELens is not installed (roast_tl[sae])")


@pytest.fixture(scope="module")
def sae():
    torch.manual_seed(0)
    cfg = sae_lens.StandardSAEConfig(d_in=32, d_sae=48)
    cfg.metadata.hook_name = HOOK
    return sae_lens.StandardSAE(cfg)


def test_decoder_cosines_hand_computed():
    decoder = torch.tensor([[3.0, 4.0], [0.0, -2.0], [0.0, 0.0]])
    assert decoder_cosines(torch.tensor([0.0, 1.0]), decoder).tolist() == pytest.approx(
        [0.8, -1.0, 0.0]
    )


def test_a_latent_vector_is_the_decoder_row_at_the_saes_hook(tiny_model, sae):
    vector = latent_vector(sae, 7, tiny_model)
    assert vector.hook_names == [HOOK]
    assert torch.equal(vector[HOOK], sae.W_dec[7].detach())
    assert vector.metadata["sae_latent"] == 7
    assert vector.metadata["model_name"] == tiny_model.cfg.model_name


def test_steering_with_a_latent_adds_alpha_times_its_decoder_row(tiny_model, sae):
    ids = torch.tensor([encode(tiny_model, PROMPTS[0])])
    _, plain = tiny_model.run_with_cache(ids, names_filter=HOOK)
    with steer(tiny_model, latent_vector(sae, 3, tiny_model), 2.0, positions="all"):
        _, steered = tiny_model.run_with_cache(ids, names_filter=HOOK)
    expected = plain[HOOK] + 2.0 * sae.W_dec[3].detach()
    torch.testing.assert_close(steered[HOOK], expected)


def test_a_planted_latent_is_explained_first_with_cosine_one(tiny_model, sae):
    vector = SteeringVector({HOOK: 5.0 * sae.W_dec[11].detach()}, {"model_name": "m"})
    matches = explain_in_latents(vector, sae, top_k=4)
    assert matches[0].latent == 11 and matches[0].cosine == pytest.approx(1.0, abs=1e-6)
    cosines = [m.cosine for m in matches]
    assert cosines == sorted(cosines, reverse=True) and len(matches) == 4
    expected = decoder_cosines(vector[HOOK], sae.W_dec.detach())
    assert [m.latent for m in matches] == expected.topk(4).indices.tolist()


def test_bad_input_is_refused_with_the_fix(tiny_model, sae):
    with pytest.raises(ValueError, match="latent 48 is out of range for an SAE of 48 latents"):
        latent_vector(sae, 48)
    other = SteeringVector({"blocks.0.hook_resid_post": torch.ones(32)}, {})
    with pytest.raises(ValueError, match="has no entry there"):
        explain_in_latents(other, sae)
    with pytest.raises(ValueError, match="top_k must be at least 1"):
        explain_in_latents(other, sae, top_k=0)
    unnamed = sae_lens.StandardSAE(sae_lens.StandardSAEConfig(d_in=32, d_sae=4))
    with pytest.raises(ValueError, match="records no hook name"):
        latent_vector(unnamed, 0)
