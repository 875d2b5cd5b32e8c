"""Batched, left-padded, KV-cached sampling through a hooked model, seeded per prompt.

Steering hooks attached with `model.hooks` (e.g. by `roast_tl.steer`) fire on every pass, and
`CURRENT_WINDOW` tells them where the pass sits, so cached and uncached decoding steer alike.
"""

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Int
from torch import Tensor

from roast_tl.hooks import CURRENT_WINDOW, DecodeWindow


def tokenizer_of(model: Any) -> Any:
    """Return the model's tokenizer, or raise a ValueError saying how to attach one."""
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is None:
        raise ValueError("the model has no tokenizer; boot it with tokenizer=... (see load_model)")
    return tokenizer


def format_prompt(model: Any, user_message: str, *, chat: bool = True) -> str:
    """Return the text the model sees: the chat template around `user_message` when it has one."""
    tokenizer = tokenizer_of(model)
    if chat and getattr(tokenizer, "chat_template", None):
        messages = [{"role": "user", "content": user_message}]
        return str(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
    return user_message


def encode_prompt(model: Any, text: str) -> list[int]:
    """Tokenize a formatted prompt without adding special tokens (chat templates carry their own).

    Without a chat template, the tokenizer's BOS is prepended when it has one.
    """
    tokenizer = tokenizer_of(model)
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    bos = getattr(tokenizer, "bos_token_id", None)
    if not getattr(tokenizer, "chat_template", None) and bos is not None and (not ids or ids[0] != bos):
        ids = [bos, *ids]
    return ids


def pad_id(model: Any) -> int:
    """Return the id used for padding (the tokenizer's pad, else its EOS, else 0)."""
    tokenizer = tokenizer_of(model)
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if candidate is not None:
            return int(candidate)
    return 0


def stop_ids(model: Any) -> set[int]:
    """Return the token ids that end a completion (EOS, and the chat end-of-turn token)."""
    tokenizer = tokenizer_of(model)
    ids = {int(tokenizer.eos_token_id)} if tokenizer.eos_token_id is not None else set()
    unk = getattr(tokenizer, "unk_token_id", None)
    for token in ("<|im_end|>", "<|eot_id|>", "<|end|>"):
        # A direct lookup: building `get_vocab()` costs tens of ms per call on a 50k vocabulary.
        token_id = tokenizer.convert_tokens_to_ids(token)
        if token_id is not None and (token_id != unk or token == getattr(tokenizer, "unk_token", None)):
            ids.add(int(token_id))
    return ids


def left_pad(
    sequences: Sequence[Sequence[int]], pad: int
) -> tuple[Int[Tensor, "batch pos"], Int[Tensor, "batch pos"]]:
    """Left-pad token lists into `(input_ids, attention_mask)`."""
    if not sequences:
        raise ValueError("no sequences to pad (empty prompt list)")
    if any(len(s) == 0 for s in sequences):
        raise ValueError("a sequence is empty; every prompt needs at least one token")
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, width - len(seq) :] = torch.tensor(list(seq), dtype=torch.long)
        mask[row, width - len(seq) :] = 1
    return ids, mask


def position_ids_for(attention_mask: Int[Tensor, "batch pos"]) -> Int[Tensor, "batch pos"]:
    """Positions that skip left padding, so a padded row sees the positions it would alone."""
    return (attention_mask.cumsum(-1) - 1).clamp_min(0)


def forward_step(
    model: Any,
    input_ids: Int[Tensor, "batch pos"],
    attention_mask: Int[Tensor, "batch total"],
    position_ids: Int[Tensor, "batch pos"],
    past_key_values: Any = None,
    *,
    use_cache: bool = True,
) -> tuple[Tensor, Any]:
    """Run one forward pass and return (last-position logits (batch, vocab), KV cache).

    TL 4.x bridges wrap an HF model whose modules carry the HookPoints, so calling it directly
    fires every attached hook while keeping HF's KV cache and `logits_to_keep`.
    """
    hf_model = getattr(model, "original_model", None)
    if hf_model is None:
        raise TypeError(
            "roast_tl generation needs a TransformerLens TransformerBridge (model.original_model); "
            f"got {type(model).__name__}"
        )
    out = hf_model(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=position_ids,
        past_key_values=past_key_values,
        use_cache=use_cache,
        logits_to_keep=1,
    )
    return out.logits[:, -1, :], (out.past_key_values if use_cache else None)


# Nucleus sampling first looks at this many candidates and sorts the whole vocabulary only when
# they hold less than `top_p` of the mass: a full sort of a 50k vocabulary per row per step was
# the largest cost of sampling at batch 32.
_NUCLEUS_CANDIDATES = 256


def sample_next(
    logits: Tensor,
    *,
    temperature: float,
    top_p: float,
    uniforms: Tensor | None,
) -> Tensor:
    """Pick the next token per row: argmax when temperature is 0, else nucleus sampling.

    Sampling inverts the CDF of the top-p distribution at `uniforms` (one U(0,1) draw per row),
    so the randomness comes from per-prompt generators and not from the batch layout.
    """
    if temperature == 0.0:
        return logits.argmax(dim=-1)
    assert uniforms is not None
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    sorted_probs = order = None
    if top_p < 1.0 and probs.shape[-1] > _NUCLEUS_CANDIDATES:
        sorted_probs, order = probs.topk(_NUCLEUS_CANDIDATES, dim=-1, sorted=True)
        # Every token past the candidates is dropped when the candidates hold top_p of the mass.
        if not bool((sorted_probs.cumsum(dim=-1)[:, -1] >= top_p).all()):
            sorted_probs = order = None
    if sorted_probs is None or order is None:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
    cumulative = sorted_probs.cumsum(dim=-1)
    keep = (cumulative - sorted_probs) < top_p  # always keeps the most likely token
    kept = sorted_probs * keep
    kept_cdf = kept.cumsum(dim=-1)
    target = uniforms.to(kept_cdf.dtype)[:, None] * kept_cdf[:, -1:]
    choice = torch.searchsorted(kept_cdf, target).clamp_max(kept.shape[-1] - 1)
    return order.gather(-1, choice).squeeze(-1)


@dataclass
class Generation:
    """Completions of a batch: `tokens[i]` are row i's new token ids, ending at its stop token."""

    tokens: list[list[int]]
    finished: list[bool]


@torch.inference_mode()
def generate_tokens(
    model: Any,
    prompts: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    temperature: float = 0.0,
    top_p: float = 1.0,
    generators: Sequence[torch.Generator] | None = None,
    use_cache: bool = True,
    stop_token_ids: Collection[int] | None = None,
) -> Generation:
    """Generate up to `max_new_tokens` for each tokenized prompt (a batch, left-padded).

    `generators[i]` seeds row i's sampling (rows may share one generator object; draws are made
    in row order, finished rows included, so a row's tokens do not depend on when others stop).
    Rows stop at `stop_token_ids` (default: the model's stop tokens; pass `()` to never stop);
    the stop token is kept. Finished rows are dropped from the batch as they accumulate.
    """
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
    if temperature < 0 or not 0 < top_p <= 1:
        raise ValueError(f"need temperature >= 0 and 0 < top_p <= 1, got {temperature}, {top_p}")
    if temperature > 0 and (generators is None or len(generators) != len(prompts)):
        raise ValueError("sampling needs one torch.Generator per prompt row (generators=...)")
    pad = pad_id(model)
    stops = sorted(stop_ids(model) if stop_token_ids is None else {int(t) for t in stop_token_ids})
    stop_tensor = torch.tensor(stops, dtype=torch.long)
    input_ids, prompt_mask = left_pad(prompts, pad)
    device = next(iter(model.parameters())).device if hasattr(model, "parameters") else "cpu"
    batch, prompt_len = input_ids.shape
    total = prompt_len + max_new_tokens
    # Whole-generation buffers, sliced per step instead of grown with torch.cat.
    prompt_positions = position_ids_for(prompt_mask)
    mask = torch.ones((batch, total), dtype=torch.long)
    mask[:, :prompt_len] = prompt_mask
    positions = torch.cat(
        [prompt_positions, prompt_positions[:, -1:] + torch.arange(1, max_new_tokens + 1)], dim=1
    )
    sequence = torch.full((batch, total), pad, dtype=torch.long)
    sequence[:, :prompt_len] = input_ids
    mask, positions, sequence = mask.to(device), positions.to(device), sequence.to(device)
    new_tokens = torch.full((batch, max_new_tokens), pad, dtype=torch.long)
    done = torch.zeros(batch, dtype=torch.bool)
    lengths = torch.zeros(batch, dtype=torch.long)
    live = torch.arange(batch)  # original row of each row still in the batch
    finished_in_batch = 0  # rows done but not yet dropped from the batch
    past: Any = None
    for step in range(max_new_tokens):
        width = prompt_len + step
        if use_cache and step > 0:
            step_ids, step_positions, offset = sequence[:, width - 1 : width], positions[:, width - 1 : width], width - 1
        else:
            step_ids, step_positions, offset = sequence[:, :width], positions[:, :width], 0
        token = CURRENT_WINDOW.set(DecodeWindow(offset=offset, prompt_len=prompt_len))
        try:
            logits, past = forward_step(
                model, step_ids, mask[:, :width], step_positions, past, use_cache=use_cache
            )
        finally:
            CURRENT_WINDOW.reset(token)
        uniforms = None
        if temperature > 0:
            assert generators is not None
            draws = torch.stack([torch.rand((), generator=g) for g in generators])
            uniforms = draws[live]
        next_token = sample_next(logits, temperature=temperature, top_p=top_p, uniforms=uniforms).cpu()
        was_done = done[live]
        next_token = torch.where(was_done, torch.full_like(next_token, pad), next_token)
        new_tokens[live, step] = next_token
        lengths[live] += (~was_done).long()
        now_done = was_done | torch.isin(next_token, stop_tensor)
        done[live] = now_done
        if bool(now_done.all()):
            break
        sequence[:, width] = next_token.to(device)
        finished_in_batch = int(now_done.sum())
        # Drop finished rows once a quarter of the batch is finished: each drop copies the cache.
        if finished_in_batch * 4 >= len(live) and (past is not None or not use_cache):
            keep = (~now_done).nonzero().squeeze(-1)
            if past is not None:
                if not hasattr(past, "batch_select_indices"):
                    continue
                past.batch_select_indices(keep.to(device))
            keep_dev = keep.to(device)
            live, mask = live[keep], mask[keep_dev]
            positions, sequence = positions[keep_dev], sequence[keep_dev]
    rows = [new_tokens[i, : int(lengths[i])].tolist() for i in range(batch)]
    return Generation(tokens=rows, finished=done.tolist())


def generate(
    model: Any,
    prompts: Sequence[str],
    *,
    max_new_tokens: int = 32,
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int = 0,
    chat: bool = True,
    use_cache: bool = True,
) -> list[str]:
    """Generate a completion for each user message (greedy by default) and return the texts.

    Steer it by calling it inside `roast_tl.steer(...)`.
    """
    tokenizer = tokenizer_of(model)
    encoded = [encode_prompt(model, format_prompt(model, p, chat=chat)) for p in prompts]
    generators = [torch.Generator().manual_seed(seed + i) for i in range(len(prompts))]
    out = generate_tokens(
        model,
        encoded,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_p=top_p,
        generators=generators if temperature > 0 else None,
        use_cache=use_cache,
    )
    return [tokenizer.decode(t, skip_special_tokens=True) for t in out.tokens]
