"""Tokenizer helpers: chat formatting, prompt encoding, padding and stop tokens.

Everything here takes a Hugging Face tokenizer (the model's `tokenizer` attribute), not a model,
so the pure stages (pairing, grading) can tokenize without running anything.
"""

from collections.abc import Sequence
from typing import Any

import torch
from jaxtyping import Int
from torch import Tensor

from roast_tl._types import TokenIds


def tokenizer_of(model: Any) -> Any:
    """Return the model's tokenizer, or raise a ValueError saying how to attach one."""
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is None:
        raise ValueError("the model has no tokenizer; boot it with tokenizer=... (see load_model)")
    return tokenizer


def resolve_chat(tokenizer: Any, chat: bool | None) -> bool:
    """Whether prompts get the chat template: `None` when the tokenizer has one, else `chat`.

    `chat=True` with a tokenizer that has no chat template is a ValueError (a base model's
    tokenizer): there is no template to apply.
    """
    has_template = bool(getattr(tokenizer, "chat_template", None))
    if chat is None:
        return has_template
    if not isinstance(chat, bool):
        raise TypeError(f"chat must be True, False or None, got {chat!r}")
    if chat and not has_template:
        raise ValueError(
            "chat=True, but the tokenizer has no chat template; use chat=False (or None) to "
            "feed the prompts as plain text"
        )
    return chat


def format_prompt(tokenizer: Any, user_message: str, *, chat: bool = True) -> str:
    """Return the text the model sees: the chat template around `user_message` when it has one."""
    if chat and getattr(tokenizer, "chat_template", None):
        messages = [{"role": "user", "content": user_message}]
        return str(
            tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        )
    return user_message


def encode_prompt(tokenizer: Any, text: str) -> TokenIds:
    """Tokenize a formatted prompt without adding special tokens (chat templates carry their own).

    Without a chat template, the tokenizer's BOS is prepended when it has one.
    """
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    bos = getattr(tokenizer, "bos_token_id", None)
    templated = getattr(tokenizer, "chat_template", None)
    if not templated and bos is not None and (not ids or ids[0] != bos):
        ids = [bos, *ids]
    return ids


def encode_text(tokenizer: Any, text: str) -> TokenIds:
    """Tokenize a completion: no special tokens added."""
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def pad_id(tokenizer: Any) -> int:
    """Return the id used for padding (the tokenizer's pad, else its EOS, else 0)."""
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if candidate is not None:
            return int(candidate)
    return 0


def stop_ids(tokenizer: Any) -> set[int]:
    """Return the token ids that end a completion (EOS, and the chat end-of-turn token)."""
    ids = {int(tokenizer.eos_token_id)} if tokenizer.eos_token_id is not None else set()
    unk = getattr(tokenizer, "unk_token_id", None)
    for token in ("<|im_end|>", "<|eot_id|>", "<|end|>"):
        # A direct lookup: building `get_vocab()` costs tens of ms per call on a 50k vocabulary.
        token_id = tokenizer.convert_tokens_to_ids(token)
        is_unk = token_id == unk and token != getattr(tokenizer, "unk_token", None)
        if token_id is not None and not is_unk:
            ids.add(int(token_id))
    return ids


def left_pad(
    sequences: Sequence[Sequence[int]], pad: int
) -> tuple[Int[Tensor, "batch pos"], Int[Tensor, "batch pos"]]:
    """Left-pad token lists into `(input_ids, attention_mask)`.

    >>> ids, mask = left_pad([[5, 6], [7]], pad=0)
    >>> ids.tolist(), mask.tolist()
    ([[5, 6], [0, 7]], [[1, 1], [0, 1]])
    """
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
    """Positions that skip left padding, so a padded row sees the positions it would alone.

    >>> position_ids_for(torch.tensor([[0, 1, 1]])).tolist()
    [[0, 0, 1]]
    """
    return (attention_mask.cumsum(-1) - 1).clamp_min(0)
