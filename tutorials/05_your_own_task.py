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
# # 05 · Your own task in five lines
#
# You have a list of questions and their answers. This notebook turns it into a ROAST steering
# vector and a steered-vs-unsteered table, then looks at the part that decides whether the vector
# means anything: **grading**.
#
# 1. the five lines: pairs → `Task.from_pairs` → `estimate` → `save` → `compare`;
# 2. what the estimate is made of (the yield report);
# 3. graders: the shipped ones, one that sees the item (aliases), and a broken one caught early;
# 4. `chat=False`: prompts as plain text, the way a base model sees them;
# 5. the same task from a JSONL file, and the one command that does it all.
#
# **Runtime** (2 CPU cores shared with other jobs, `OMP_NUM_THREADS=1`, model already cached):
# `ROAST_TL_FAST=1` measured 68 s (up to 2 min with other jobs on the cores); full mode (8
# rollouts per question, four alphas) roughly twice that. `ROAST_TL_FAST=1` only lowers the
# number of rollouts and alphas; the code path is the same. The last cell prints this run's time.

# %%
import json
import os
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt

import roast_tl
from roast_tl.report import check_gold
from roast_tl.tasks.graders import GRADERS, normalize_text

FAST = os.environ.get("ROAST_TL_FAST") == "1"
OUT = Path(os.environ.get("ROAST_TL_TUTORIAL_OUT") or tempfile.mkdtemp(prefix="roast_tl_05_"))
OUT.mkdir(parents=True, exist_ok=True)

N_ROLLOUTS = 4 if FAST else 8  # sampled answers per training question
ALPHAS = [2.0, 4.0] if FAST else [1.0, 2.0, 4.0, 8.0]  # tried on dev; 0 is always tried too
LAYER = 10
start = time.perf_counter()
print(f"fast mode: {FAST}; files go to {OUT}")

# %% [markdown]
# ## 1 · Your data: a plain Python list
#
# Forty capitals, as `(question, answer)` pairs. Nothing else is needed: ids, the written gold
# answer (used when a question has no correct rollout) and the train / dev / test splits are
# derived.

# %%
CAPITALS = {
    "France": "Paris", "Germany": "Berlin", "Italy": "Rome", "Spain": "Madrid",
    "Japan": "Tokyo", "China": "Beijing", "Russia": "Moscow", "Egypt": "Cairo",
    "Canada": "Ottawa", "Australia": "Canberra", "Turkey": "Ankara", "Switzerland": "Bern",
    "Nigeria": "Abuja", "Pakistan": "Islamabad", "Morocco": "Rabat", "Vietnam": "Hanoi",
    "New Zealand": "Wellington", "Kazakhstan": "Astana", "Tanzania": "Dodoma",
    "Brazil": "Brasilia", "India": "New Delhi", "Portugal": "Lisbon", "Greece": "Athens",
    "Poland": "Warsaw", "Sweden": "Stockholm", "Norway": "Oslo", "Kenya": "Nairobi",
    "Peru": "Lima", "Chile": "Santiago", "Argentina": "Buenos Aires", "Thailand": "Bangkok",
    "Iran": "Tehran", "Iraq": "Baghdad", "Ireland": "Dublin", "Austria": "Vienna",
    "Hungary": "Budapest", "Cuba": "Havana", "Mexico": "Mexico City", "Colombia": "Bogota",
    "Ukraine": "Kyiv",
}  # fmt: skip
pairs = [(f"What is the capital of {country}?", capital) for country, capital in CAPITALS.items()]
print(len(pairs), "pairs, e.g.", pairs[0])

# %% [markdown]
# ## 2 · The five lines
#
# `grader="contains"` counts an answer correct when the capital appears in it as whole words
# ("The capital of France is Paris." is right). `estimate` samples `n_rollouts` answers per
# training question, contrasts each question's right answers with its wrong ones, and prints its
# **yield report**. `compare` picks alpha on the dev split (alpha 0 included) and measures test
# accuracy unsteered and steered; the result prints as a table.

# %%
model = roast_tl.load_model()
task = roast_tl.Task.from_pairs(pairs, grader="contains", name="capitals", max_new_tokens=16)
vector = roast_tl.estimate(model, task, layers=[LAYER], n_rollouts=N_ROLLOUTS)
vector.save(OUT / "capitals.safetensors")
comparison = roast_tl.compare(model, task, vector, alphas=ALPHAS, progress=False)

# %%
print(comparison)

# %% [markdown]
# With the defaults, `from_pairs` gave a fifth of the pairs to dev and a fifth to test, so the
# test split here is small and its 95% intervals are wide. Whether steering helped is computed
# from the numbers, not assumed:

# %%
sizes = {split: len(task.items(split)) for split in ("train", "dev", "test")}
unsteered, steered = comparison.unsteered, comparison.steered
print("split sizes:", sizes, "| chosen alpha:", comparison.alpha)
if comparison.alpha == 0:
    print("No alpha beat alpha 0 on dev, so the 'steered' row is the unsteered model.")
elif steered.ci_low > unsteered.ci_high:
    print("Steering clearly raised test accuracy (the 95% intervals do not overlap).")
elif steered.ci_high < unsteered.ci_low:
    print("Steering clearly lowered test accuracy (the 95% intervals do not overlap).")
else:
    print(f"The intervals overlap: {sizes['test']} test questions cannot settle the change.")

fig, ax = plt.subplots(figsize=(5, 3.2))
ax.plot(list(comparison.dev_accuracy), list(comparison.dev_accuracy.values()), marker="o")
ax.set_xlabel("alpha")
ax.set_ylabel(f"dev accuracy (n={sizes['dev']})")
ax.set_ylim(-0.05, 1.05)
ax.set_title("capitals: steering strength on dev")
fig.tight_layout()
fig.savefig(OUT / "05_dev_accuracy_vs_alpha.png", dpi=110)
plt.show()

# %% [markdown]
# ## 3 · What the vector is made of
#
# ROAST needs questions the model sometimes gets right and sometimes wrong: only those give a
# real contrast between its own correct and wrong answers. The yield report printed above says
# how many did (`rollouts`), and how many fell back to the written gold answer
# (`gold_fallback`: no rollout was right) or to a written wrong answer (`wrong_fallback`: all
# were right; `from_pairs` has none unless you give a third element, so such questions are
# skipped). It is also in the vector's metadata, and in the saved file.

# %%
meta = vector.metadata
print("rollout accuracy:", round(meta["rollout_accuracy"], 3))
print("questions per contrast path:", meta["group_counts"])
print("chat template used:", meta["chat"])
example = meta["yield_report"]["wrong_examples"][:1]
print("a rollout graded wrong:", example)

# %% [markdown]
# ## 4 · Graders
#
# A grader is a function `grader(completion, item) -> bool`. It sees the whole `TaskItem`
# (prompt, gold, ...), so it can accept aliases or per-item labels. The shipped ones, by name:

# %%
print(sorted(GRADERS), "+ regex:PATTERN")
item = next(i for s in ("train", "dev", "test") for i in task.items(s) if i.gold == "Kyiv")
answers = ["The capital of Ukraine is Kyiv.", "The capital of Ukraine is Kiev.", "Kyiv"]
for name in ("exact", "contains"):
    strict = roast_tl.Task.from_pairs(pairs, grader=name, name="capitals")
    print(f"{name:<9}", [strict.grade(text, item) for text in answers])

# %% [markdown]
# `exact` compares the whole first line, so a full sentence fails it; `contains` accepts the
# sentence but not the older spelling "Kiev", which this model may write (look for it among the
# yield report's examples graded wrong). A grader of your own can accept both:

# %%
ALIASES = {"Kyiv": ["Kiev"], "Bogota": ["Bogotá"], "Brasilia": ["Brasília"]}


def capital_or_alias(completion: str, item: roast_tl.TaskItem) -> bool:
    """The gold capital, or one of its other spellings, appears as whole words."""
    text = f" {normalize_text(completion)} "
    return any(
        f" {normalize_text(name)} " in text for name in [item.gold, *ALIASES.get(item.gold, [])]
    )


aliased = roast_tl.Task.from_pairs(pairs, grader=capital_or_alias, name="capitals")
print("aliases  ", [aliased.grade(text, item) for text in answers])

# %% [markdown]
# A grader that disagrees with your own gold answers poisons the contrast: it marks the model's
# right answers wrong. `estimate` catches the plainest case before sampling anything, by grading
# every item's written gold answer (a `LowYieldWarning`, filterable like any warning). Here the
# gold answers are written as sentences but graded with `exact` against the bare capital:

# %%
sentences = [
    {"prompt": q, "answer": a, "gold_completion": f"The capital is {a}."} for q, a in pairs
]
broken = roast_tl.Task.from_pairs(sentences, grader="exact", name="capitals")
check = check_gold(broken, broken.items("train"))
print(f"gold self-check: {check.n_items - check.failed} of {check.n_items} graded correct")
for problem in check.problems():
    print("warning:", problem)

# %% [markdown]
# When the model answers but the grader misses it, the check above passes and the **rollout
# accuracy** and the graded examples in the yield report are where it shows (accuracy near 0,
# most questions on `gold_fallback`, wrong examples that are plainly right); `estimate` warns
# about those too.
#
# ## 5 · `chat=False`: prompts as plain text
#
# By default every prompt gets the tokenizer's chat template when it has one (SmolLM2-Instruct
# does). For completion-style prompts, or a base model, pass `chat=False` to `estimate`,
# `sample_rollouts`, `evaluate`, `compare` and `generate`. The setting is part of each saved
# rollout's fingerprint, so rollouts made one way are never reused the other way.

# %%
for chat in (None, False):
    print(
        f"chat={chat!s:<5}",
        roast_tl.generate(model, ["The capital of France is"], chat=chat, max_new_tokens=8),
    )

# %% [markdown]
# ## 6 · The same task from a JSONL file, and from the command line
#
# One JSON object per line, with the question and answer under any two field names:

# %%
path = OUT / "capitals.jsonl"
path.write_text("".join(json.dumps({"question": q, "capital": a}) + "\n" for q, a in pairs))
from_file = roast_tl.load_task(
    "jsonl", path=path, prompt_field="question", answer_field="capital", grader="contains"
)
same = all(
    [(i.prompt, i.gold) for i in from_file.items(s)] == [(i.prompt, i.gold) for i in task.items(s)]
    for s in ("train", "dev", "test")
)
print(
    from_file.name,
    {s: len(from_file.items(s)) for s in ("train", "dev", "test")},
    "same items:",
    same,
)

# %% [markdown]
# From a shell, one command estimates the vector, picks alpha on dev, prints the table and saves
# everything under `--out` (add `--no-chat` for plain-text prompts):
#
# ```bash
# roast-tl demo --task jsonl --task-path capitals.jsonl --prompt-field question \
#     --answer-field capital --grader contains --layers 10 --out roast_runs/capitals
# ```
#
# `roast-tl estimate` (same task flags, `--save-vector FILE`) stops after the vector and its
# yield report.

# %%
print(f"total runtime: {time.perf_counter() - start:.0f} s (fast mode: {FAST})")

# %% [markdown]
# ## Exercises
#
# 1. Grade the same rollouts with `capital_or_alias` instead of `contains`
#    (`roast_tl.estimate(model, aliased, ...)`): how do the rollout accuracy and the yield
#    report change?
# 2. Estimate with `chat=False` and prompts written as completions (`"The capital of France
#    is"`): does the plain-text model give more or fewer real contrasts?
# 3. Pass `n_dev=` and `n_test=` to `Task.from_pairs` to trade training questions for a
#    tighter test interval. How many test questions would separate the two rows of the table?
# 4. Add a third element to some pairs (a wrong capital). Which questions move from skipped to
#    `wrong_fallback` in the yield report?
