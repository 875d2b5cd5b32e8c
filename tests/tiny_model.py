"""Shared test builders: a tiny random Llama model (no downloads), its tokenizer, one toy task.

The model is a TransformerBridge on transformer-lens 4.x and a HookedTransformer (the same
random Llama weights, converted) on 3.x: `BACKEND` says which. Every test file that needs a
model, a tokenizer or a task builds it from here; no test module imports another.
"""

import tempfile
from importlib.metadata import version

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from roast_tl._tokens import encode_prompt
from roast_tl.rollouts import Rollout
from roast_tl.tasks.base import Task, TaskItem
from roast_tl.vector import SteeringVector

WORDS = (
    "the a good bad movie great awful is was it this that review sentiment answer positive "
    "negative neutral yes no maybe what plus minus equals reply with number only one word "
    ": . ? , 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 #### food service loved hated"
).split()

BACKEND = "bridge" if int(version("transformer-lens").split(".")[0]) >= 4 else "hooked"
"""The backend the installed transformer-lens gives `make_tiny_model`: "bridge" or "hooked"."""

requires_bridge = pytest.mark.skipif(
    BACKEND != "bridge", reason="needs a TransformerBridge (transformer-lens 4.x)"
)
"""Mark a test that only a TransformerBridge can run (`@requires_bridge`)."""

requires_hooked = pytest.mark.skipif(
    BACKEND != "hooked", reason="needs a HookedTransformer (transformer-lens 3.x)"
)
"""Mark a test that only a HookedTransformer can run (`@requires_hooked`)."""

HOOK = "blocks.1.hook_resid_post"
"""The hook most tests steer or read (the tiny model has blocks 0, 1 and 2)."""

EMBED_HOOK = "blocks.0.hook_resid_pre"
"""The token embeddings themselves (Llama adds no position embedding): planted signals are exact."""

PROMPTS = (
    "the movie was good",
    "this food was awful",
    "what is 3 plus 4 ?",
    "the service was great",
    "a bad movie",
    "it was awful food",
    "review : loved it",
    "the answer is yes",
)


def first_word_parity(text: str) -> str | None:
    """A toy grader: "even"/"odd" by the length of the completion's first word (None if empty)."""
    words = text.split()
    return ("even" if len(words[0]) % 2 == 0 else "odd") if words else None


def make_tiny_tokenizer():
    """A word-level fast tokenizer over `WORDS` with <pad> 0, <s> 1, </s> 2, <unk> 3; no chat
    template, left padding. Saved to (and reloaded from) a temp folder, its `name_or_path`."""
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3}
    for word in WORDS:
        vocab.setdefault(word, len(vocab))
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
    )
    folder = tempfile.mkdtemp(prefix="roast_tl_tiny_tok_")
    fast.save_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.padding_side = "left"
    return tokenizer


def make_tiny_hf_model(seed: int = 0, n_layers: int = 3, d_model: int = 32):
    """The plain HF `(LlamaForCausalLM, tokenizer)` that `make_tiny_model` wraps."""
    tokenizer = make_tiny_tokenizer()
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=d_model,
        intermediate_size=2 * d_model,
        num_hidden_layers=n_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    return LlamaForCausalLM(config).eval(), tokenizer


def _wrap(hf_model, tokenizer):
    """`hf_model` as the installed TL's backend: a bridge (TL 4.x) or a HookedTransformer (3.x)."""
    if BACKEND == "hooked":
        from roast_tl._hooked_load import hooked_from_hf

        return hooked_from_hf(hf_model, tokenizer, tokenizer.name_or_path)
    from transformer_lens.model_bridge import TransformerBridge

    model = TransformerBridge.boot_transformers(
        tokenizer.name_or_path, hf_model=hf_model, tokenizer=tokenizer
    )
    model.cfg.default_prepend_bos = False
    model.eval()
    return model


def make_tiny_model(seed: int = 0, n_layers: int = 3, d_model: int = 32):
    """A random Llama model (3 layers, d_model 32, d_mlp 64) with the tiny tokenizer: a
    TransformerBridge on TL 4.x, a HookedTransformer with the same weights on TL 3.x."""
    hf_model, tokenizer = make_tiny_hf_model(seed, n_layers, d_model)
    return _wrap(hf_model, tokenizer)


def _prompt(i: int) -> str:
    """The i-th toy prompt: `PROMPTS` in order, then again with " 1", " 2", ... appended, so no two
    items of a task share a prompt (a shared prompt across splits raises a RoastWarning)."""
    base = PROMPTS[i % len(PROMPTS)]
    return base if i < len(PROMPTS) else f"{base} {i // len(PROMPTS)}"


def tiny_task(n_train: int = 6, n_dev: int = 2, n_test: int = 2, *, name: str = "parity") -> Task:
    """The toy parity task: prompts from `PROMPTS`, gold "even", graded by `first_word_parity`.

    Items are q0, q1, ... in order: train first, then dev, then test (disjoint). Written answers
    are "good" (gold completion) and "bad" (wrong completion); few-shot examples are train[:2].
    """
    total = n_train + n_dev + n_test
    items = [TaskItem(f"q{i}", _prompt(i), "even", "good", "bad") for i in range(total)]
    train, dev, test = items[:n_train], items[n_train : n_train + n_dev], items[n_train + n_dev :]
    return Task(
        name=name,
        splits={"train": train, "dev": dev, "test": test},
        extract_answer=first_word_parity,
        max_new_tokens=3,
        few_shot=train[:2],
    )


def encode(model, text: str) -> list[int]:
    """Token ids of `text` as roast_tl feeds a prompt to the tiny model (BOS first)."""
    return encode_prompt(model.tokenizer, text)


def random_vector(model, *, hooks=(HOOK,), scale: float = 3.0, seed: int = 0) -> SteeringVector:
    """A seeded random steering vector for `model` at `hooks`, recording the model's name."""
    gen = torch.Generator().manual_seed(seed)
    vectors = {h: scale * torch.randn(model.cfg.d_model, generator=gen) for h in hooks}
    return SteeringVector(vectors, {"model_name": model.cfg.model_name})


def make_rollout(item_id: str, correct: bool, *, index: int = 0, **fields) -> Rollout:
    """A rollout with small default token ids: prompt [5, 6], completion [7] if correct else [8]."""
    row = {
        "item_id": item_id,
        "sample_index": index,
        "prompt_text": "the movie",
        "prompt_token_ids": [5, 6],
        "completion_token_ids": [7 if correct else 8],
        "completion": "x",
        "answer": None,
        "correct": correct,
        "seed": 0,
    }
    return Rollout(**{**row, **fields})


def unchecked(function):
    """`function` without the test-time jaxtyping/beartype check: as users run it, so its own
    input validation (the errors users see) can be tested with deliberately ill-typed values."""
    return getattr(function, "__wrapped__", function)


def construct_unchecked(cls, *args, **kwargs):
    """`cls(*args, **kwargs)` without the test-time type check of `cls.__init__`."""
    instance = object.__new__(cls)
    unchecked(cls.__init__)(instance, *args, **kwargs)
    return instance


def make_tiny_model_in(dtype: torch.dtype, seed: int = 0):
    """`make_tiny_model(seed)` with its weights cast to `dtype` (e.g. torch.bfloat16) before the
    model is built, as `load_model(dtype=...)` loads a model."""
    hf_model, tokenizer = make_tiny_hf_model(seed)
    return _wrap(hf_model.to(dtype), tokenizer)


def finishes_within(seconds: float, function, *args) -> bool:
    """Whether `function(*args)` returns or raises within `seconds`, run in a forked child that
    is killed when late: a C-level hang (a billion-digit int) holds the GIL, so no in-process
    timeout can stop it. Call `function` again in the test to check what it returns or raises."""
    import multiprocessing

    def quietly():
        try:
            function(*args)
        except BaseException:
            pass

    child = multiprocessing.get_context("fork").Process(target=quietly, daemon=True)
    child.start()
    child.join(seconds)
    if child.is_alive():
        child.kill()
        child.join()
        return False
    return True


def token_embeddings(model):
    """The model's token embedding matrix [d_vocab, d_model] (a Parameter, editable in place)."""
    if BACKEND == "hooked":
        return model.W_E
    return model.original_model.get_input_embeddings().weight
