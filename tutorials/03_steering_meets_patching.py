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
# # 03 · Steering meets patching
#
# A steering vector is an intervention on one hook point; activation patching is the standard
# tool to ask *where* an intervention's effect travels. Here we treat the **steered** run as the
# "clean" run and the **unsteered** run as the "corrupted" one, and use
# `transformer_lens.patching` and `run_with_cache` to ask:
#
# 1. Which downstream components (attention, MLP, layer by layer) carry the steering effect to the
#    answer logits?
# 2. How much of the effect is *direct*: the vector read straight off by the unembedding? Which
#    tokens does the vector promote and suppress (direct logit attribution)?
#
# **Runtime** (2 CPU cores shared with other jobs, `OMP_NUM_THREADS=1`): `ROAST_TL_FAST=1` measured
# 111 s; full mode (64 × 8 rollouts, 16 patching prompts) not timed, roughly 8 minutes. The last
# cell prints this run's time. Fast mode uses fewer training prompts, rollouts and
# patching prompts; the code path is the same.

# %%
import collections
import os
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from transformer_lens import patching

import roast_tl

FAST = os.environ.get("ROAST_TL_FAST") == "1"
OUT = Path(os.environ.get("ROAST_TL_TUTORIAL_OUT") or tempfile.mkdtemp(prefix="roast_tl_03_"))
OUT.mkdir(parents=True, exist_ok=True)

N_TRAIN = 8 if FAST else 64
N_ROLLOUTS = 4 if FAST else 8
N_PATCH = 4 if FAST else 16  # prompts in the patching batch
ALPHA = 16.0  # the alpha roast_tl's demo picked on the dev split for this task and layer
LAYER = 10
torch.manual_seed(0)
start = time.perf_counter()

model = roast_tl.load_model()
task = roast_tl.load_task("sentiment")
vector = roast_tl.estimate(
    model,
    task,
    items=task.items("train")[:N_TRAIN],
    layers=[LAYER],
    n_rollouts=N_ROLLOUTS,
    seed=0,
    progress=False,
)
hook = f"blocks.{LAYER}.hook_resid_post"


def chat_text(message: str) -> str:
    """The text the model sees for a user message: the tokenizer's chat template around it."""
    messages = [{"role": "user", "content": message}]
    return model.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


v = vector[hook]  # (d_model,)
print(vector, vector.metadata["group_counts"])

# %% [markdown]
# ## A batch where the answer is one token away
#
# Unsteered, the model answers "The sentiment of this review is neutral." So we append
# "The sentiment of this review is" to each chat-formatted prompt: the next token is the label.
# Two metrics, per prompt, at the final position:
#
# - **commit** = logit(gold label) − logit(" neutral"): does the model name the label instead of
#   hedging?
# - **label** = logit(gold label) − logit(wrong label): does it prefer the right label over the
#   wrong one?
#
# Patching needs aligned positions, so instead of padding we keep test prompts that tokenize to
# the most common length (an IOI-style trick: every row's last position is the same index).

# %%
SUFFIX = "The sentiment of this review is"
label_id = {w: model.to_single_token(" " + w) for w in ("positive", "negative", "neutral")}
encoded = [
    (item, model.to_tokens(chat_text(item.prompt) + SUFFIX, prepend_bos=False)[0])
    for item in task.items("test")
]
length = collections.Counter(len(t) for _, t in encoded).most_common(1)[0][0]
batch = [(item, t) for item, t in encoded if len(t) == length][:N_PATCH]
tokens = torch.stack([t for _, t in batch])  # (batch, pos)
gold = torch.tensor([label_id[item.gold] for item, _ in batch])  # (batch,)
wrong = torch.tensor(
    [label_id["negative" if item.gold == "positive" else "positive"] for item, _ in batch]
)
print("patching batch:", tuple(tokens.shape), "| gold labels:", [item.gold for item, _ in batch])


def commit(logits):  # (batch, pos, d_vocab) -> scalar
    last = logits[:, -1]
    return (last.gather(1, gold[:, None]) - last[:, label_id["neutral"]][:, None]).mean()


def label(logits):
    last = logits[:, -1]
    return (last.gather(1, gold[:, None]) - last.gather(1, wrong[:, None])).mean()


METRICS = {"commit": commit, "label": label}

# %% [markdown]
# ## Clean (steered) and corrupted (unsteered) runs
#
# `roast_tl.steer` attaches its hook through `model.hooks()`, so `run_with_cache` inside it caches
# the **steered** activations. In a plain forward pass `positions="last"` steers only the final
# position, the one that predicts the label.

# %%
with torch.no_grad():
    with roast_tl.steer(model, vector, ALPHA):
        steered_logits, steered_cache = model.run_with_cache(
            tokens
        )  # logits: (batch, pos, d_vocab)
    unsteered_logits = model(tokens)
clean = {k: f(steered_logits).item() for k, f in METRICS.items()}
corrupt = {k: f(unsteered_logits).item() for k, f in METRICS.items()}
for k in METRICS:
    print(f"{k:>6}: unsteered {corrupt[k]:+.2f} -> steered {clean[k]:+.2f}")
probs = steered_logits[:, -1].softmax(-1)[:, list(label_id.values())].mean(0)
probs0 = unsteered_logits[:, -1].softmax(-1)[:, list(label_id.values())].mean(0)
print(
    "mean P(positive, negative, neutral): unsteered",
    [round(p, 2) for p in probs0.tolist()],
    "| steered",
    [round(p, 2) for p in probs.tolist()],
)

# %% [markdown]
# ## 1 · Which layers carry the effect
#
# `patching.generic_activation_patch` runs the corrupted (unsteered) tokens once per index, with
# the clean (steered) activation patched in at that index, and evaluates the metrics. We give it an
# explicit `index_df` of (layer, last position) rows, which costs one forward per layer instead of
# one per (layer, position); it works unchanged on a TL 4.3 `TransformerBridge` and a TL 3.x
# `HookedTransformer` (one metric per call, as TL 3.x takes). Recovery is
# (patched − unsteered) / (steered − unsteered): 0 = the patch did nothing, 1 = full effect.
#
# Expectations, before looking. Steering changes only the last position at `resid_post` of layer
# 10, so `resid_pre` of layers ≤ 10 is identical in both runs (recovery 0), and patching the last
# position's `resid_pre` at any layer ≥ 11 carries the whole difference (recovery 1). That is a
# sanity check of the setup. The informative part is `attn_out` and `mlp_out` of the later layers:
# patching one component's steered output alone says how much of the effect that component
# *produces* in response to the vector.

# %%
last = tokens.shape[1] - 1
layers = list(range(model.cfg.n_layers))
# Components of layers <= LAYER run before the steering hook, so their outputs are identical in
# both runs (recovery exactly 0): we only patch them for resid_pre, as the sanity check.
site_layers = {"resid_pre": layers, "attn_out": layers[LAYER + 1 :], "mlp_out": layers[LAYER + 1 :]}
recovery = {}
with torch.no_grad():
    for site, site_layer_list in site_layers.items():
        rows = pd.DataFrame({"layer": site_layer_list, "pos": [last] * len(site_layer_list)})
        for k, metric in METRICS.items():  # one metric per call: TL 3.x takes one callable
            result = patching.generic_activation_patch(
                model,
                tokens,
                steered_cache,
                metric,
                patching.layer_pos_patch_setter,
                site,
                index_df=rows,
            )
            # (n_rows,): the metric with that layer's activation patched
            patched = np.asarray(result, dtype=float).reshape(-1)
            recovery[site, k] = ((patched - corrupt[k]) / (clean[k] - corrupt[k])).tolist()
for site, site_layer_list in site_layers.items():
    r = recovery[site, "commit"]
    print(
        f"{site:>9} recovery (commit), layers {site_layer_list[0]}-{site_layer_list[-1]}:",
        " ".join(f"{x:+.2f}" for x in r),
    )

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharey=True)
for ax, k in zip(axes, METRICS, strict=True):
    for site, style in (("resid_pre", "k--"), ("attn_out", "C0-o"), ("mlp_out", "C1-s")):
        ax.plot(site_layers[site], recovery[site, k], style, ms=3, label=site)
    ax.axvline(LAYER + 0.5, color="grey", lw=1, ls=":", label=f"steered after block {LAYER}")
    ax.set_title(f"metric: {k} (unsteered {corrupt[k]:+.1f} → steered {clean[k]:+.1f})")
    ax.set_xlabel("layer patched (last position)")
axes[0].set_ylabel("recovered fraction of the steering effect")
axes[0].legend(fontsize=8)
fig.tight_layout()
fig.savefig(OUT / "03_patching_recovery_by_layer.png", dpi=110)
plt.show()

# %% [markdown]
# Reading the plot: a component whose steered output alone recovers a large fraction is one the
# vector *recruits*: it reads the injected direction and writes something the answer depends on.
# Recoveries of single components need not sum to 1 (the network is not linear; components
# downstream of each other share credit). If the `label` metric barely moved between the runs
# (see the printed unsteered → steered values), its recovery ratio divides by a small number and
# is noise: read the `commit` panel then.
#
# ## 2 · The direct path and direct logit attribution
#
# The vector's **direct** effect is what the unembedding reads from α·v without any later
# component reacting. We measure it with roast_tl itself: a `SteeringVector` that adds the same
# α·v at the **last** layer's `resid_post`, right before the final norm and unembedding, in an
# otherwise unsteered run.

# %%
final = f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"
direct_vector = roast_tl.SteeringVector({final: v}, vector.metadata)
with torch.no_grad():
    direct_logits = model.run_with_hooks(tokens, fwd_hooks=direct_vector.fwd_hooks(ALPHA))
for k, f in METRICS.items():
    share = (f(direct_logits).item() - corrupt[k]) / (clean[k] - corrupt[k])
    print(f"{k:>6}: direct path alone recovers {share:+.2f} of the steering effect")

# %% [markdown]
# Direct logit attribution (DLA) of the vector: push v through the final RMSNorm's gain and the
# unembedding, `(v ⊙ γ) @ W_U`, a `(d_vocab,)` vector of logit changes per unit of α (before the
# norm's division by the residual's RMS, which rescales all tokens alike and so leaves the ranking
# unchanged). `model.W_U` is `(d_model, d_vocab)` on both backends; the final norm
# `model.ln_final` (an RMSNorm here) keeps its scale in `.weight` on a TL 4.x bridge and in `.w` on
# a TL 3.x HookedTransformer.

# %%
W_U = model.W_U.detach()  # (d_model, d_vocab) = (576, 49152)
norm = model.ln_final
gamma = (norm.weight if hasattr(norm, "weight") else norm.w).detach()  # (d_model,)
dla = (v * gamma) @ W_U  # (d_vocab,)
top = dla.topk(15)
bottom = (-dla).topk(15)
print("promoted:  ", [model.tokenizer.decode([i]) for i in top.indices.tolist()])
print("suppressed:", [model.tokenizer.decode([i]) for i in bottom.indices.tolist()])
z = (dla - dla.mean()) / dla.std()
for w, i in label_id.items():
    print(f"DLA of ' {w}': {dla[i].item():+.2f} (z-score over the vocabulary {z[i].item():+.2f})")

fig, ax = plt.subplots(figsize=(5.5, 3.4))
ax.hist(z.numpy(), bins=120, color="grey")
for (w, i), c in zip(label_id.items(), ("C2", "C3", "C0"), strict=True):
    ax.axvline(z[i].item(), color=c, label=f"' {w}'")
ax.set_yscale("log")
ax.set_xlabel("DLA of the steering vector (z-score over the vocabulary)")
ax.set_ylabel("tokens")
ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig(OUT / "03_dla_histogram.png", dpi=110)
plt.show()

# %% [markdown]
# If the label tokens sit near z = 0 while the direct path recovers little, the vector does not
# simply write "positive"/"negative" into the residual stream: its effect on the answer is made by
# later components that read it, which is what section 1 localizes. If instead the direct path
# recovers most of the effect, the vector acts mostly like a bias on the unembedding. The numbers
# above decide which of the two this run shows.
#
# Note on `transformer_lens.patching`: its layer/position helpers (`get_act_patch_resid_pre` and
# friends) sweep every position and do not take an `index_df`, so we called the function they
# wrap, `generic_activation_patch`, which ran unchanged on the TL 4.3 bridge above: it only needs
# `run_with_hooks`, `cfg`, and the classic hook names (`blocks.{l}.hook_attn_out`, ...) that the
# bridge keeps as aliases. (The helpers themselves are not run in this notebook.)

# %%
print(f"total runtime: {time.perf_counter() - start:.0f} s (fast mode: {FAST})")

# %% [markdown]
# ## Exercises
#
# 1. Steer with `positions="all"` (`roast_tl.steer(model, vector, ALPHA, positions="all")`) and
#    patch `resid_pre` at every position (`patching.get_act_patch_resid_pre`, on a short batch):
#    does the effect now also travel through attention from earlier positions?
# 2. Patch per attention head: `patching.get_act_patch_attn_head_out_all_pos` on the steered cache.
#    Which heads in layers 11–29 respond to the vector?
# 3. Reverse the roles: patch unsteered activations into the steered run (denoising vs noising).
#    Which components are *necessary* rather than sufficient?
# 4. Compute the DLA of each later layer's `mlp_out` difference (steered − unsteered, from two
#    caches) and compare it with the patching recovery of section 1.
