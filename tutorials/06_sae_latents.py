# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 · ROAST next to SAELens: SAE latents as steering vectors, vectors in SAE latents
#
# This tutorial runs on the **hooked backend** (TransformerLens 3.x `HookedTransformer`), where
# SAELens installs: `pip install "roast_tl[sae]"`. It does two things with one SAE:
#
# 1. steer with an SAE latent: `roast_tl.sae.latent_vector(sae, latent, model)` is a
#    `SteeringVector` holding the latent's decoder row at the SAE's hook, so `steer`, `generate`
#    and `evaluate` take it like a ROAST vector;
# 2. explain a ROAST vector in SAE latents: `roast_tl.sae.explain_in_latents(vector, sae)` lists
#    the latents whose decoder directions have the highest cosine with the vector.
#
# **The SAE here is random.** No machine of this project reaches a model hub, and no SAE for
# SmolLM2-135M-Instruct ships offline, so the SAE is a `StandardSAE` that SAELens initialises
# itself. Its latents mean nothing, and cosines with a random direction in 576 dimensions sit
# near ±0.04. With a trained SAE (`sae_lens.SAE.from_pretrained(release, sae_id)`) the same calls
# apply unchanged: set `sae.cfg.metadata.hook_name` if the release does not record it.
#
# **Runtime** (2 CPU cores shared, `OMP_NUM_THREADS=1`): `ROAST_TL_FAST=1` about 2 minutes
# (measured below); full mode (32 × 8 rollouts) roughly 6 minutes.

# %%
import os
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import sae_lens
import torch

import roast_tl
from roast_tl.sae import decoder_cosines, explain_in_latents, latent_vector

FAST = os.environ.get("ROAST_TL_FAST") == "1"
OUT = Path(os.environ.get("ROAST_TL_TUTORIAL_OUT") or tempfile.mkdtemp(prefix="roast_tl_06_"))
OUT.mkdir(parents=True, exist_ok=True)
LAYER = 10
HOOK = f"blocks.{LAYER}.hook_resid_post"
N_TRAIN = 8 if FAST else 32
N_ROLLOUTS = 4 if FAST else 8
start = time.perf_counter()

model = roast_tl.load_model(backend="hooked")
print(type(model).__name__, model.cfg.model_name)

# %% [markdown]
# ## An SAE at the residual stream of block 10
#
# SAELens builds and initialises it; the decoder `W_dec` has one row (a direction in the residual
# stream) per latent.

# %%
torch.manual_seed(0)
sae_cfg = sae_lens.StandardSAEConfig(d_in=model.cfg.d_model, d_sae=4 * model.cfg.d_model)
sae_cfg.metadata.hook_name = HOOK
sae = sae_lens.StandardSAE(sae_cfg)
print(f"SAE at {HOOK}: {sae.cfg.d_sae} latents of width {sae.cfg.d_in}")

# %% [markdown]
# ## 1. Steer with one latent
#
# `latent_vector` takes the decoder row as SAELens stores it; `alpha` scales it. Steering at
# the last position of each pass (the default) changes what the model writes next.

# %%
prompt = ["Review: The food was cold and the waiter ignored us. Positive or negative?"]
feature = latent_vector(sae, 123, model)
print(feature)
print("plain:  ", roast_tl.generate(model, prompt, max_new_tokens=12))
for alpha in (8.0, 32.0):
    with roast_tl.steer(model, feature, alpha):
        print(f"α = {alpha:>4}:", roast_tl.generate(model, prompt, max_new_tokens=12))

# %% [markdown]
# ## 2. A ROAST vector, explained in SAE latents
#
# Estimate a ROAST vector for the sentiment task at the same hook, then ask which latents point
# the same way. With a random SAE the best cosines are what chance gives, which the histogram
# shows against the whole decoder.

# %%
task = roast_tl.load_task("sentiment")
vector = roast_tl.estimate(
    model,
    task,
    items=task.items("train")[:N_TRAIN],
    layers=[LAYER],
    n_rollouts=N_ROLLOUTS,
    progress=False,
)
for match in explain_in_latents(vector, sae, top_k=5):
    print(f"latent {match.latent:>5}: cosine {match.cosine:+.3f}")

cosines = decoder_cosines(vector[HOOK], sae.W_dec.detach())
fig, ax = plt.subplots(figsize=(6, 3))
ax.hist(cosines.numpy(), bins=60)
ax.set_xlabel("cosine(ROAST vector, SAE decoder row)")
ax.set_ylabel("latents")
ax.set_title("a random SAE: every latent is about orthogonal to the vector")
fig.tight_layout()
fig.savefig(OUT / "06_roast_vs_sae_latents.png", dpi=110)

# %%
print(f"this run took {time.perf_counter() - start:.0f} s (fast mode: {FAST})")
