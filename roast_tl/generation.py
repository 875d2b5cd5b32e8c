"""Batched, left-padded, KV-cached sampling through a hooked model, seeded per prompt.

Steering hooks attached with `model.hooks` (e.g. by `roast_tl.steer`) fire on every pass, and
`CURRENT_WINDOW` tells them where the pass sits, so cached and uncached decoding steer alike.
A bridge samples on its weight-sharing HF model instead (`roast_tl._fast`: SDPA attention, no
hooked module calls) when no hook is attached or only steering hooks it can run there. Rows of
one prompt share one prefill: each distinct prompt runs once and its KV cache is expanded to its
rows.
`complete` is the one "format, encode, decode" path that rollouts, evaluation and `generate` share.
"""

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor

from roast_tl._bridge import model_device
from roast_tl._fast import sampling_forward
from roast_tl._tokens import (
    encode_prompt,
    format_prompt,
    left_pad,
    pad_id,
    position_ids_for,
    resolve_chat,
    stop_ids,
    tokenizer_of,
)
from roast_tl._types import HookedModel, TokenIds
from roast_tl.hooks import CURRENT_WINDOW, DecodeWindow, hooked_points

# Nucleus sampling first looks at this many candidates and sorts the whole vocabulary only when
# they hold less than `top_p` of the mass: a full sort of a 50k vocabulary per row per step was
# the largest cost of sampling at batch 32.
_NUCLEUS_CANDIDATES = 256


def _check_sampling(temperature: float, top_p: float) -> None:
    """Reject a NaN or negative temperature and a top_p outside (0, 1] (NaN included)."""
    if not temperature >= 0 or not 0 < top_p <= 1:
        raise ValueError(
            f"need temperature >= 0 and 0 < top_p <= 1, got temperature={temperature}, "
            f"top_p={top_p}"
        )


def _check_messages(messages: Any, what: str) -> None:
    """Reject a bare string (it would be read one character at a time) and non-string items."""
    if isinstance(messages, str | bytes):
        raise TypeError(
            f"{what} must be a list of strings, got a single {type(messages).__name__}; "
            f"wrap one prompt in a list: [{messages[:20]!r}]"
        )
    for i, message in enumerate(messages):
        if not isinstance(message, str):
            raise TypeError(
                f"{what}[{i}] is {type(message).__name__}, not str; pass the prompt text"
            )


def _check_finite(logits: Float[Tensor, "batch vocab"], model: HookedModel, step: int) -> None:
    """Raise when a row's logits hold NaN or +inf, or are all -inf (one reduction per step)."""
    row_max = logits.amax(dim=-1)  # NaN propagates through max
    if bool(torch.isfinite(row_max).all()):
        return
    steered = bool(hooked_points(model))
    cause = (
        "the steering hooks attached to the model are the likely cause: alpha times the vector "
        "overflows the activations; use a smaller alpha or check the vector"
        if steered
        else "no hook is attached, so the model itself overflows (check its weights and dtype)"
    )
    bad = (~torch.isfinite(row_max)).nonzero().flatten().tolist()
    raise ValueError(
        f"the model's logits became non-finite (NaN or inf) at decoding step {step} in "
        f"{len(bad)} of {len(row_max)} rows; {cause}"
    )


def sample_next(
    logits: Float[Tensor, "batch vocab"],
    *,
    temperature: float,
    top_p: float,
    uniforms: Float[Tensor, " batch"] | None,
) -> Int[Tensor, " batch"]:
    """Pick the next token per row: argmax when temperature is 0, else nucleus sampling.

    Sampling inverts the CDF of the top-p distribution at `uniforms` (one U(0,1) draw per row),
    so the randomness comes from per-prompt generators and not from the batch layout.
    `uniforms` may live on any device; they are moved to the logits' device.
    """
    _check_sampling(temperature, top_p)
    if temperature == 0.0:
        return logits.argmax(dim=-1)
    if uniforms is None:
        raise ValueError("sampling (temperature > 0) needs one uniform draw per row (uniforms=)")
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
    target = uniforms.to(device=kept_cdf.device, dtype=kept_cdf.dtype)[:, None] * kept_cdf[:, -1:]
    choice = torch.searchsorted(kept_cdf, target).clamp_max(kept.shape[-1] - 1)
    return order.gather(-1, choice).squeeze(-1)


@dataclass
class Generation:
    """Completions of a batch: `tokens[i]` are row i's new token ids, ending at its stop token."""

    tokens: list[list[int]]
    finished: list[bool]


def _shared_prefill(
    forward: Any,
    prompts: Sequence[Sequence[int]],
    ids: Int[Tensor, "batch pos"],
    mask: Int[Tensor, "batch total"],
    positions: Int[Tensor, "batch pos"],
    window: DecodeWindow,
) -> tuple[Float[Tensor, "batch vocab"], Any]:
    """Prefill each distinct prompt once and expand its logits and KV cache to its rows.

    Rows of one prompt share its left padding, so each expanded row is what its own prefill
    computes; steering hooks see `window` cut to the distinct rows. A cache that cannot select
    rows (no `batch_select_indices`) is rebuilt in full.
    """
    index: dict[tuple[int, ...], int] = {}  # distinct prompt -> its index among the distinct
    firsts: list[int] = []  # each distinct prompt's first row
    row_of: list[int] = []  # each row's distinct prompt
    for row, prompt in enumerate(prompts):
        if tuple(prompt) not in index:
            index[tuple(prompt)] = len(firsts)
            firsts.append(row)
        row_of.append(index[tuple(prompt)])
    width = ids.shape[1]
    if len(firsts) == len(prompts):
        return forward(ids, mask[:, :width], positions, None, use_cache=True)  # type: ignore[no-any-return]
    unique = torch.tensor(firsts, device=ids.device)
    n_pad = None if window.n_pad is None else window.n_pad[unique.cpu()]
    token = CURRENT_WINDOW.set(replace(window, n_pad=n_pad))
    try:
        logits, past = forward(
            ids[unique], mask[unique, :width], positions[unique], None, use_cache=True
        )
    finally:
        CURRENT_WINDOW.reset(token)
    if not hasattr(past, "batch_select_indices"):
        return forward(ids, mask[:, :width], positions, None, use_cache=True)  # type: ignore[no-any-return]
    expand = torch.tensor(row_of, device=ids.device)
    past.batch_select_indices(expand)
    return logits[expand], past


@torch.inference_mode()
def generate_tokens(
    model: HookedModel,
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
    A prompt longer than the model's context (`cfg.n_ctx`) minus `max_new_tokens` is refused,
    and non-finite logits (an overflowing steering hook) raise instead of emitting padding.
    """
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
    _check_sampling(temperature, top_p)
    if temperature > 0 and (generators is None or len(generators) != len(prompts)):
        raise ValueError("sampling needs one torch.Generator per prompt row (generators=...)")
    tokenizer = tokenizer_of(model)
    pad = pad_id(tokenizer)
    stops = sorted(
        stop_ids(tokenizer) if stop_token_ids is None else {int(t) for t in stop_token_ids}
    )
    stop_tensor = torch.tensor(stops, dtype=torch.long)
    input_ids, prompt_mask = left_pad(prompts, pad)
    n_ctx = getattr(model.cfg, "n_ctx", None)
    if isinstance(n_ctx, int) and input_ids.shape[1] + max_new_tokens > n_ctx:
        raise ValueError(
            f"a prompt of {input_ids.shape[1]} tokens plus max_new_tokens={max_new_tokens} "
            f"exceeds the model's context of {n_ctx} tokens (cfg.n_ctx); shorten the prompt "
            "or lower max_new_tokens"
        )
    device = model_device(model)
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
    n_pad = prompt_len - prompt_mask.sum(-1)  # left pads per row, for index positions
    finished_in_batch = 0  # rows done but not yet dropped from the batch
    past: Any = None
    with sampling_forward(model) as (_, forward):
        for step in range(max_new_tokens):
            width = prompt_len + step
            offset = width - 1 if use_cache and step > 0 else 0
            step_ids, step_positions = sequence[:, offset:width], positions[:, offset:width]
            window = DecodeWindow(offset=offset, prompt_len=prompt_len, n_pad=n_pad[live])
            token = CURRENT_WINDOW.set(window)
            try:
                if step == 0 and use_cache:
                    logits, past = _shared_prefill(
                        forward, prompts, step_ids, mask, step_positions, window
                    )
                else:
                    logits, past = forward(
                        step_ids, mask[:, :width], step_positions, past, use_cache=use_cache
                    )
            finally:
                CURRENT_WINDOW.reset(token)
            _check_finite(logits, model, step)
            uniforms = None
            if generators is not None and temperature > 0:
                draws = torch.stack([torch.rand((), generator=g) for g in generators])
                uniforms = draws[live]
            next_token = sample_next(
                logits, temperature=temperature, top_p=top_p, uniforms=uniforms
            ).cpu()
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
            # Drop finished rows once a quarter of the batch is finished (each drop copies the
            # cache).
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


@dataclass(frozen=True)
class Completion:
    """One completion of one user message: what the model saw and what it wrote."""

    prompt_text: str
    prompt_token_ids: TokenIds
    token_ids: TokenIds
    text: str


def complete(
    model: HookedModel,
    user_messages: Sequence[str],
    *,
    n: int = 1,
    max_new_tokens: int,
    temperature: float = 0.0,
    top_p: float = 1.0,
    seeds: Sequence[int] | None = None,
    chat: bool = True,
    use_cache: bool = True,
) -> list[list[Completion]]:
    """Return `n` completions per user message (one forward batch for all of them).

    Formats each message (chat template when `chat` and the tokenizer has one), encodes,
    decodes and returns the texts with their token ids. Sampling (`temperature > 0`) needs
    `seeds`: either one per message (its `n` samples draw in turn from that message's
    generator) or one per sample, message-major (`seeds[i * n + k]` seeds sample k of message
    i, so each sample depends only on its own seed). The two agree when `n` is 1.
    """
    _check_messages(user_messages, "user_messages")
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    _check_sampling(temperature, top_p)
    per_sample = seeds is not None and n > 1 and len(seeds) == len(user_messages) * n
    if temperature > 0 and (seeds is None or (len(seeds) != len(user_messages) and not per_sample)):
        raise ValueError(
            "sampling needs one seed per user message or one per sample (seeds=[...]): "
            f"{len(user_messages)} or {len(user_messages) * n}, got "
            f"{'none' if seeds is None else len(seeds)}"
        )
    tokenizer = tokenizer_of(model)
    known: dict[str, tuple[str, TokenIds]] = {}  # a message repeated is formatted once
    for message in user_messages:
        if message not in known:
            text = format_prompt(tokenizer, message, chat=chat)
            known[message] = (text, encode_prompt(tokenizer, text))
    texts = [known[message][0] for message in user_messages]
    encoded = [known[message][1] for message in user_messages]
    generators = None
    if temperature > 0 and seeds is not None:
        if per_sample:
            generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
        else:
            per_message = [torch.Generator().manual_seed(int(s)) for s in seeds]
            generators = [g for g in per_message for _ in range(n)]
    out = generate_tokens(
        model,
        [ids for ids in encoded for _ in range(n)],
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_p=top_p,
        generators=generators,
        use_cache=use_cache,
    )
    return [
        [
            Completion(
                texts[i], encoded[i], tokens, tokenizer.decode(tokens, skip_special_tokens=True)
            )
            for tokens in out.tokens[i * n : (i + 1) * n]
        ]
        for i in range(len(user_messages))
    ]


def generate(
    model: HookedModel,
    prompts: Sequence[str],
    *,
    max_new_tokens: int = 32,
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int = 0,
    chat: bool | None = None,
    use_cache: bool = True,
) -> list[str]:
    """Generate a completion for each user message (greedy by default) and return the texts.

    Steer it by calling it inside `roast_tl.steer(...)`; prompt i samples with seed `seed + i`.
    `prompts` is a list: `generate(model, ["one prompt"])`. `chat`: None applies the chat
    template when the tokenizer has one; False feeds the prompts as plain text (a base-model
    completion such as "The capital of France is"); True requires a template.
    """
    _check_messages(prompts, "prompts")
    chat = resolve_chat(tokenizer_of(model), chat)
    seeds = [seed + i for i in range(len(prompts))]
    out = complete(
        model,
        prompts,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_p=top_p,
        seeds=seeds,
        chat=chat,
        use_cache=use_cache,
    )
    return [row[0].text for row in out]
