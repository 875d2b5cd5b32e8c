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
# # 04 · Probing the steering direction
#
# A linear probe trained to tell correct from incorrect rollouts also defines a direction in the
# residual stream. How does it relate to the ROAST direction, which is built from the *same*
# rollouts but contrasted within each prompt? We compare them layer by layer:
#
# 1. train a logistic-regression probe per layer on residual activations of the model's own
#    rollouts (label = graded correct), tested on rollouts of **held-out prompts**;
# 2. measure the cosine between the probe's weight vector and the ROAST vector at each layer, and
#    how well each direction separates correct from incorrect held-out rollouts (AUC);
# 3. steer with the probe direction and compare with ROAST.
#
# **Runtime** (2 CPU cores shared with other jobs, `OMP_NUM_THREADS=1`): `ROAST_TL_FAST=1` measured
# 104 s; full mode (64 × 8 rollouts, three 100-prompt evaluations) not timed, roughly 8 minutes.
# The last cell prints this run's time. Fast mode has very few rollouts per layer (tens), so its
# probe numbers are noisy: it shows the method, not a result.

# %%
import os
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

import roast_tl
from roast_tl.activations import capture_activations
from roast_tl.scaling import max_norm

FAST = os.environ.get("ROAST_TL_FAST") == "1"
OUT = Path(os.environ.get("ROAST_TL_TUTORIAL_OUT") or tempfile.mkdtemp(prefix="roast_tl_04_"))
OUT.mkdir(parents=True, exist_ok=True)

N_TRAIN = 12 if FAST else 64
N_ROLLOUTS = 4 if FAST else 8
N_TEST = 8 if FAST else 100
LAYERS = [2, 6, 10, 14, 18, 22, 26]
STEER_LAYER = 10
ALPHA = 16.0  # the alpha roast_tl's demo picked on the dev split for ROAST at layer 10
torch.manual_seed(0)
start = time.perf_counter()

model = roast_tl.load_model()
task = roast_tl.load_task("sentiment")
items = task.items("train")[:N_TRAIN]
names = [f"blocks.{layer}.hook_resid_post" for layer in LAYERS]

# %% [markdown]
# ## Rollouts and their activations
#
# `roast_tl.sample_rollouts` gives graded samples; each `Rollout` carries its prompt and
# completion token ids, so `roast_tl.activations.capture_activations` can teacher-force them and
# read any hook points at the last token. It returns `{hook_name: (n_rollouts, d_model)}`, and
# stops the forward pass after the deepest requested layer.

# %%
rollouts = roast_tl.sample_rollouts(
    model, task, items, n_rollouts=N_ROLLOUTS, seed=0, progress=False
)
sequences = [(r.prompt_token_ids, r.completion_token_ids) for r in rollouts]
acts = capture_activations(model, sequences, names)  # {name: (rollout, d_model)}
y = torch.tensor([float(r.correct) for r in rollouts])  # (rollout,), 1 = graded correct
print(
    f"{len(rollouts)} rollouts, {int(y.sum())} correct; activations per layer:",
    tuple(acts[names[0]].shape),
)

# Split by prompt, not by rollout: rollouts of one prompt share almost all their tokens, so a
# rollout-level split would let the probe recognize prompts instead of correctness.
prompt_ids = sorted({r.item_id for r in rollouts})
held_out = set(np.random.default_rng(0).permutation(prompt_ids)[: len(prompt_ids) // 2].tolist())
test_mask = torch.tensor([r.item_id in held_out for r in rollouts])
train_mask = ~test_mask
print(
    f"probe train: {int(train_mask.sum())} rollouts of {len(prompt_ids) - len(held_out)} prompts; "
    f"held out: {int(test_mask.sum())} rollouts of {len(held_out)} prompts"
)
majority = max(y[test_mask].mean().item(), 1 - y[test_mask].mean().item())
print(f"majority-class accuracy on the held-out rollouts: {majority:.2f}")

# %% [markdown]
# ## A logistic-regression probe per layer, in plain torch
#
# Features are centered with the training mean and divided by **one** scalar (their RMS norm), not
# standardized per coordinate: per-coordinate standardization would make the L2 penalty cheapest
# along low-variance coordinates, and mapping the weight back (w / std) would then blow those up,
# so the probe's direction would mostly reflect the residual stream's scale, not the task. With a
# single scale the penalty is isotropic in activation space, and as it grows the probe's weight
# tends to the class-mean difference (the gradient of the loss at w = 0).


# %%
def train_probe(x, labels, l2=1e-2, steps=200):
    """Return (direction in activation space (d_model,), predict(x) -> P(correct))."""
    mean = x.mean(0)
    scale = (x - mean).square().sum(-1).mean().sqrt().clamp_min(1e-6)  # one scalar
    z = (x - mean) / scale  # (n, d_model)
    w = torch.zeros(x.shape[1], requires_grad=True)
    b = torch.zeros((), requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = (
            torch.nn.functional.binary_cross_entropy_with_logits(z @ w + b, labels)
            + l2 * w.square().sum()
        )
        loss.backward()
        return loss

    opt.step(closure)
    w, b = w.detach(), b.detach()
    return w, lambda x_new: torch.sigmoid(((x_new - mean) / scale) @ w + b)


def auc(scores, labels):
    """Probability that a random correct rollout scores above a random incorrect one."""
    pos, neg = scores[labels == 1], scores[labels == 0]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    return (
        (pos[:, None] > neg[None, :]).float().mean()
        + 0.5 * (pos[:, None] == neg[None, :]).float().mean()
    ).item()


# %% [markdown]
# The ROAST vector at every probed layer comes from the **same rollouts**, through
# `roast_tl.estimate_from_rollouts` (no new sampling). We also keep the plain class-mean
# difference (mean of correct − mean of incorrect over all rollouts, ignoring prompts) as a
# reference: it is what a probe tends towards when classes are roughly Gaussian.

# %%
roast = roast_tl.estimate_from_rollouts(
    model, task, rollouts, items=items, layers=LAYERS, progress=False
)
rows = []
probes = {}
for layer, name in zip(LAYERS, names, strict=True):
    x = acts[name]
    direction, predict = train_probe(x[train_mask], y[train_mask])
    probes[layer] = direction
    v = roast[name]
    class_diff = x[y == 1].mean(0) - x[y == 0].mean(0)
    rows.append(
        {
            "layer": layer,
            "probe_acc": ((predict(x[test_mask]) > 0.5).float() == y[test_mask])
            .float()
            .mean()
            .item(),
            "probe_auc": auc(x[test_mask] @ direction, y[test_mask]),
            "roast_auc": auc(x[test_mask] @ v, y[test_mask]),
            "cos_probe_roast": torch.cosine_similarity(direction, v, dim=0).item(),
            "cos_probe_classdiff": torch.cosine_similarity(direction, class_diff, dim=0).item(),
            "cos_roast_classdiff": torch.cosine_similarity(v, class_diff, dim=0).item(),
        }
    )
print(
    f"{'layer':>5} {'probe acc':>9} {'probe AUC':>9} {'ROAST AUC':>9} "
    f"{'cos(p,R)':>8} {'cos(p,Δ)':>8} {'cos(R,Δ)':>8}"
)
for r in rows:
    print(
        f"{r['layer']:>5} {r['probe_acc']:>9.2f} {r['probe_auc']:>9.2f} {r['roast_auc']:>9.2f} "
        f"{r['cos_probe_roast']:>+8.2f} {r['cos_probe_classdiff']:>+8.2f} "
        f"{r['cos_roast_classdiff']:>+8.2f}"
    )
print(
    f"random directions in {model.cfg.d_model} dims: |cos| ≈ {1 / np.sqrt(model.cfg.d_model):.2f}"
)

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
axes[0].plot(LAYERS, [r["probe_acc"] for r in rows], "C0-o", label="probe accuracy")
axes[0].plot(LAYERS, [r["probe_auc"] for r in rows], "C0--s", label="probe AUC")
axes[0].plot(LAYERS, [r["roast_auc"] for r in rows], "C1-^", label="ROAST projection AUC")
axes[0].axhline(majority, color="grey", ls=":", label="majority class")
axes[0].set_ylim(0, 1.05)
axes[0].set_xlabel("layer (resid_post)")
axes[0].set_title("Held-out prompts: correct vs incorrect rollouts")
axes[0].legend(fontsize=8)
axes[1].plot(LAYERS, [r["cos_probe_roast"] for r in rows], "k-o", label="cos(probe, ROAST)")
axes[1].plot(
    LAYERS, [r["cos_probe_classdiff"] for r in rows], "C0--", label="cos(probe, class-mean Δ)"
)
axes[1].plot(
    LAYERS, [r["cos_roast_classdiff"] for r in rows], "C1--", label="cos(ROAST, class-mean Δ)"
)
axes[1].axhline(0, color="grey", lw=0.8)
axes[1].set_xlabel("layer (resid_post)")
axes[1].set_title("How aligned are the directions?")
axes[1].legend(fontsize=8)
fig.tight_layout()
fig.savefig(OUT / "04_probe_vs_roast_by_layer.png", dpi=110)
plt.show()

# %% [markdown]
# How to read it. First compare probe accuracy with the majority-class line: when correct
# rollouts are rare, a probe that always says "incorrect" sits on that line and has learned
# nothing usable at threshold 0.5; AUC (0.5 = chance) measures the ranking whatever the threshold.
# A probe can reach high accuracy by any feature that predicts correctness
# *across prompts*, including features of the prompt itself (for instance reviews whose sentiment
# is easy). ROAST contrasts rollouts *within* a prompt, so whatever is constant over one prompt
# cancels. So a low cos(probe, ROAST) with a good probe AUC is not a contradiction: the probe may be
# reading prompt difficulty, not how the answer went. Conversely, a ROAST projection with AUC well
# above 0.5 says the steering direction also separates the outcomes it was built to separate, on
# prompts it never saw. With few held-out rollouts (fast mode) differences of ±0.1 are noise.
#
# ## Steering with the probe direction
#
# A `SteeringVector` is just `{hook_name: (d_model,) tensor}` plus metadata, so any direction can
# steer. We scale the probe weight like ROAST (`max_norm`, max |v_j| = 1, pointing towards
# "correct") so that the same alpha means the same size of push.

# %%
hook = f"blocks.{STEER_LAYER}.hook_resid_post"
probe_vector = roast_tl.SteeringVector(
    {hook: max_norm(probes[STEER_LAYER])},
    {"method": "logistic_probe", "model_name": model.cfg.model_name, "hook_names": [hook]},
)
roast_vector = roast_tl.SteeringVector({hook: roast[hook]}, roast.metadata)
print(
    f"cos(probe, ROAST) at layer {STEER_LAYER}: "
    f"{torch.cosine_similarity(probe_vector[hook], roast_vector[hook], dim=0).item():+.2f}"
)

test_items = task.items("test")[:N_TEST]
results = {
    "unsteered": roast_tl.evaluate(model, task, items=test_items, progress=False),
    "ROAST": roast_tl.evaluate(model, task, roast_vector, ALPHA, items=test_items, progress=False),
    "probe": roast_tl.evaluate(model, task, probe_vector, ALPHA, items=test_items, progress=False),
}
for name, r in results.items():
    said = {}
    for rec in r.records:
        said[rec.answer] = said.get(rec.answer, 0) + 1
    print(f"{name:<10} acc {r.accuracy:.2f} [{r.ci_low:.2f}, {r.ci_high:.2f}]  answers {said}")
    print("           e.g.", [rec.completion for rec in r.records[:2]])
    if name != "unsteered" and len([a for a in said if a is not None]) == 1:
        print("           -> one label for every review: this direction acts as a label bias here")

fig, ax = plt.subplots(figsize=(4.5, 3.2))
acc = [r.accuracy for r in results.values()]
err = np.array([[r.accuracy - r.ci_low, r.ci_high - r.accuracy] for r in results.values()]).T
ax.bar(list(results), acc, yerr=err, capsize=4, color=["grey", "C1", "C0"])
ax.set_ylim(0, 1.05)
ax.set_ylabel(f"test accuracy (n={len(test_items)})")
ax.set_title(f"Steering at layer {STEER_LAYER}, alpha={ALPHA:g}")
fig.tight_layout()
fig.savefig(OUT / "04_steering_probe_vs_roast.png", dpi=110)
plt.show()

# %% [markdown]
# A direction that *classifies* outcomes is not necessarily one that *causes* them: the probe is
# fit to be discriminative, ROAST to be the average within-prompt change from a wrong to a right
# answer. Whether the probe direction steers as well is an empirical question that the bars answer
# for this run (the same alpha may also simply be the wrong size for the probe direction: see
# exercise 1).

# %%
print(f"total runtime: {time.perf_counter() - start:.0f} s (fast mode: {FAST})")

# %% [markdown]
# ## Exercises
#
# 1. Sweep alpha for the probe vector on the dev split (`task.items("dev")`), as tutorial 01 does
#    for ROAST. Is there any alpha at which it matches ROAST?
# 2. Train the probe on within-prompt-centered activations (subtract each prompt's mean
#    activation first). Does cos(probe, ROAST) rise? Why would it?
# 3. Read activations with `read_at="response_mean"` in `capture_activations`: do probes get
#    better when they see the whole answer rather than its last token?
# 4. Steer with the class-mean difference `class_diff` (ungrouped, across prompts) and compare with
#    ROAST's within-prompt contrast.
