"""What the speed benchmarks run: chat prompts, left-padded batches, synthetic contrast sets.

Tokenization goes through the model's own tokenizer (its chat template when it has one), and the
reference forward calls the HF module directly, as HF users would.
"""

import math
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from roast_tl.generation import generate_tokens
from roast_tl.pairs import ContrastGroup, ContrastSet

PROMPTS = [
    "Write a short story about a lighthouse keeper who finds a message in a bottle.",
    "Explain how photosynthesis works.",
    "What is 17 times 23? Show your work.",
    "Describe the city of Paris in spring.",
    "Give me three tips for learning a new language.",
    "Why is the sky blue?",
    "Summarize the plot of a detective novel you invent.",
    "List the planets of the solar system and one fact about each.",
    "How do I bake bread at home?",
    "Is this review positive or negative? 'The food was cold and the waiter was rude.'",
    "Translate 'good morning, how are you?' into French and explain the grammar.",
    "What are the benefits of regular exercise?",
    "Tom has 3 boxes with 12 apples each and eats 5. How many are left?",
    "Write a poem about the ocean.",
    "Explain what a neural network is to a child.",
    "What happened in the year 1969?",
]


def prompt_ids(tokenizer: Any, n: int) -> list[list[int]]:
    """The first `n` prompts (cycling) as the model sees them: chat-formatted token ids."""
    out = []
    for i in range(n):
        text = PROMPTS[i % len(PROMPTS)]
        if getattr(tokenizer, "chat_template", None):
            messages = [{"role": "user", "content": text}]
            text = tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
            out.append(list(tokenizer(text, add_special_tokens=False)["input_ids"]))
        else:
            out.append(list(tokenizer(text)["input_ids"]))
    return out


def sample_rollout_batch(model: Any, prompts: list[list[int]], new_tokens: int) -> list[list[int]]:
    """Sample `new_tokens` per prompt as `sample_rollouts` does (T=0.8, top_p=0.9, one generator
    per row), stop tokens off so every row makes the same count."""
    gens = [torch.Generator().manual_seed(i) for i in range(len(prompts))]
    out = generate_tokens(
        model,
        prompts,
        max_new_tokens=new_tokens,
        temperature=0.8,
        top_p=0.9,
        generators=gens,
        stop_token_ids=(),
    )
    return out.tokens


def on_hooked_path(model: Any, hook_name: str = "blocks.0.hook_resid_pre") -> Any:
    """A `with` block in which `model` samples on its hooked path: a hook that changes nothing is
    attached, and sampling takes the fast path only for hooks it can run."""
    return model.hooks(fwd_hooks=[(hook_name, lambda activation, hook: None)])


def hf_sample(
    hf_model: Any,
    ids: torch.Tensor,
    mask: torch.Tensor,
    *,
    pad_token_id: int,
    new_tokens: int,
    num_return_sequences: int = 1,
) -> torch.Tensor:
    """HF `generate` with the rollout settings (T=0.8, top_p=0.9, no top-k), exactly
    `new_tokens` per row, seeded with 0; returns the whole sequences."""
    torch.manual_seed(0)
    with torch.inference_mode():
        return hf_model.generate(  # type: ignore[no-any-return]
            input_ids=ids,
            attention_mask=mask,
            do_sample=True,
            temperature=0.8,
            top_p=0.9,
            top_k=0,
            num_return_sequences=num_return_sequences,
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            pad_token_id=pad_token_id,
        )


def left_pad(
    tokenizer: Any, sequences: Sequence[Sequence[int]]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad token lists into (input_ids, attention_mask) with the tokenizer's own padding,
    as HF batched generation wants."""
    batch = tokenizer.pad(
        {"input_ids": [list(s) for s in sequences]},
        padding=True,
        padding_side="left",
        return_tensors="pt",
    )
    return batch["input_ids"], batch["attention_mask"]


def hf_forward(
    module: Any,
    ids: torch.Tensor,
    mask: torch.Tensor,
    *,
    past: Any = None,
    use_cache: bool = False,
) -> Any:
    """One forward of an HF causal LM, last position's logits only, padding-aware positions.

    On `model.original_model` (the HF module inside a bridge) every TransformerLens hook fires:
    it is the pass roast_tl makes per decoding step; on an unwrapped model it is plain HF.
    """
    positions = (mask.cumsum(-1) - 1).clamp_min(0)[:, -ids.shape[1] :]
    return module(
        input_ids=ids,
        attention_mask=mask,
        position_ids=positions,
        past_key_values=past,
        use_cache=use_cache,
        logits_to_keep=1,
    )


def synthetic_contrasts(
    model: Any, n_rollouts: int, *, per_group: int = 8, seed: int = 0
) -> ContrastSet:
    """Contrast groups of real chat prompts and random completions of real lengths (8-96 tokens)."""
    gen = torch.Generator().manual_seed(seed)
    prompts = prompt_ids(model.tokenizer, len(PROMPTS))
    vocab = int(model.cfg.d_vocab)
    groups = []
    for g in range(math.ceil(n_rollouts / per_group)):
        size = min(per_group, n_rollouts - g * per_group)
        prompt = prompts[g % len(prompts)]
        seqs = []
        for _ in range(size):
            length = int(torch.randint(8, 97, (), generator=gen))
            seqs.append((prompt, torch.randint(0, vocab, (length,), generator=gen).tolist()))
        half = max(1, size // 2)
        positives, negatives = seqs[:half], seqs[half:] or seqs[:1]
        groups.append(ContrastGroup(f"g{g}", positives, negatives, 1.0, "rollouts"))
    return ContrastSet(groups=groups, counts={"rollouts": len(groups)})


def sequences(contrasts: ContrastSet) -> list[tuple[list[int], list[int]]]:
    """Every (prompt, response) sequence of every group, positives then negatives."""
    return [s for g in contrasts.groups for s in (*g.positives, *g.negatives)]


def padded_batches(
    contrasts: ContrastSet, tokenizer: Any, batch_size: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The contrast set's prompt + response sequences, left-padded, in batches (as capture)."""
    flat = sequences(contrasts)
    for start in range(0, len(flat), batch_size):
        yield left_pad(tokenizer, [p + r for p, r in flat[start : start + batch_size]])
