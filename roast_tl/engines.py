"""Sampling engines: who turns a prompt's token ids into completions for `sample_rollouts`.

- `"roast_tl"` (the default): roast_tl's own sampler (`roast_tl.generation`): rollout k of an
  item draws from its own seed, so its tokens do not depend on what it was batched with; each
  distinct prompt is prefilled once; unhooked runs take the fast path (`roast_tl._fast`).
- `"hf"`: HF `generate(num_return_sequences=n)` on the fast path's weight-sharing HF model,
  one call per item, seeded with the seed of that item's first rollout sampled in the call.
  Its tokens depend on which of the item's rollouts were sampled together, and it cannot
  steer (TransformerLens hooks do not fire in it).

Rollouts from engines roast_tl does not run (vLLM on a cluster) are graded with
`roast_tl.rollouts.grade_rollouts` and used like these (README, "Rollouts from any engine").
"""

from collections.abc import Sequence
from typing import Any, Literal

import torch
import transformers

from roast_tl._bridge import model_device
from roast_tl._fast import fast_model
from roast_tl._tokens import pad_id, stop_ids, tokenizer_of
from roast_tl._types import HookedModel, TokenIds
from roast_tl.hooks import hooked_points

Engine = Literal["roast_tl", "hf"]
"""Who samples rollouts: roast_tl's own sampler, or HF `generate` on the unhooked HF model."""

HF_SAMPLER = f"transformers {transformers.__version__} generate"
"""What rows of the `"hf"` engine record as their sampler (roast_tl's is `SAMPLER_VERSION`)."""


def hf_model_for(model: HookedModel) -> Any:
    """The unhooked HF model the `"hf"` engine samples on, or a ValueError saying why not."""
    attached = hooked_points(model)
    if attached:
        raise ValueError(
            f"engine='hf' samples on the unhooked HF model, but hooks are attached "
            f"({attached[0]}, ...): they would not act; use engine='roast_tl' to sample steered"
        )
    module = fast_model(model)
    if module is None:
        raise ValueError(
            f"engine='hf' needs a TransformerBridge (a wrapped HF model); got "
            f"{type(model).__name__}: use engine='roast_tl'"
        )
    return module


def _cut_at_stop(row: Sequence[int], stops: set[int]) -> TokenIds:
    """A generated row up to and including its first stop token (HF pads after it)."""
    out: TokenIds = []
    for token in row:
        out.append(int(token))
        if token in stops:
            break
    return out


@torch.inference_mode()
def hf_generate(
    model: HookedModel,
    prompt: TokenIds,
    *,
    n: int,
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    seed: int,
) -> list[TokenIds]:
    """`n` completions of one tokenized prompt by HF `generate(num_return_sequences=n)`.

    Seeded with `seed` in a forked RNG (the global one is left as it was); each completion
    ends at the model's first stop token (kept, as roast_tl's sampler keeps it).
    """
    module = hf_model_for(model)
    tokenizer = tokenizer_of(model)
    stops = stop_ids(tokenizer)
    device = model_device(model)
    sampled = temperature > 0
    config = transformers.GenerationConfig(
        do_sample=sampled,
        temperature=temperature if sampled else None,
        top_p=top_p if sampled else None,
        top_k=0 if sampled else None,
        max_new_tokens=max_new_tokens,
        num_return_sequences=n if sampled else 1,  # greedy rows are all the same
        pad_token_id=pad_id(tokenizer),
        eos_token_id=sorted(stops) or None,
    )
    ids = torch.tensor([list(prompt)], device=device)
    cuda = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(int(seed) % 2**63)
        out = module.generate(
            input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=config
        )
    rows = [_cut_at_stop(row, stops) for row in out[:, ids.shape[1] :].tolist()]
    return rows if sampled else rows * n
