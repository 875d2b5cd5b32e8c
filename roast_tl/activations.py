"""Teacher-forced activation capture at one position, accumulated per contrast group.

Only the requested hook points are read, the forward stops after the last needed block, and
activations are summed per group as they arrive, so memory does not grow with the rollouts.
One generator, `iter_activations`, feeds both `capture_activations` and `contrast_means`.
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import get_args

import torch
from jaxtyping import Float, Int
from torch import Tensor
from tqdm.auto import tqdm
from transformer_lens.hook_points import HookPoint

from roast_tl._bridge import model_device, read_forward
from roast_tl._tokens import left_pad, pad_id, position_ids_for, tokenizer_of
from roast_tl._types import HookedModel, HookFn, ReadAt, TokenIds
from roast_tl.pairs import ContrastSet
from roast_tl.sites import check_hook_names, layer_of


def read_rows(
    activation: Float[Tensor, "batch pos d_act"],
    response_lengths: Int[Tensor, " batch"],
    read_at: ReadAt,
) -> Float[Tensor, "batch d_act"]:
    """Read one vector per left-padded row: the last token, or the mean over response tokens.

    >>> acts = torch.arange(6.0).reshape(1, 3, 2)  # positions [0, 1], [2, 3], [4, 5]
    >>> read_rows(acts, torch.tensor([2]), "response_mean").tolist()
    [[3.0, 4.0]]
    """
    if read_at == "last":
        return activation[:, -1, :]
    n_pos = activation.shape[1]
    index = torch.arange(n_pos, device=activation.device)
    start = (n_pos - response_lengths.clamp_min(1)).to(activation.device)
    mask = (index[None, :] >= start[:, None]).to(activation.dtype)
    return (activation * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)


def iter_activations(
    model: HookedModel,
    sequences: Sequence[tuple[TokenIds, TokenIds]],
    hook_names: Sequence[str],
    *,
    read_at: ReadAt = "last",
    batch_size: int = 16,
) -> Iterator[dict[str, Float[Tensor, "batch d_act"]]]:
    """Yield, batch by batch, each hook's fp32 CPU activation for each (prompt, response) pair."""
    if read_at not in get_args(ReadAt):
        raise ValueError(f"unknown read_at {read_at!r}; choose one of {list(get_args(ReadAt))}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if not sequences:
        raise ValueError("no sequences to read activations from")
    names = list(hook_names)
    check_hook_names(model, names)
    layers = [layer_of(n) for n in names]
    last_layer = None if None in layers else max(x for x in layers if x is not None)
    pad = pad_id(tokenizer_of(model))
    device = model_device(model)
    for start in range(0, len(sequences), batch_size):
        batch = sequences[start : start + batch_size]
        ids, mask = left_pad([p + r for p, r in batch], pad)
        ids, mask = ids.to(device), mask.to(device)
        lengths = torch.tensor([len(r) for _, r in batch])
        grabbed: dict[str, Tensor] = {}

        def reader(
            name: str, lengths: Tensor = lengths, into: dict[str, Tensor] = grabbed
        ) -> HookFn:
            def read(activation: Tensor, hook: HookPoint) -> None:
                into[name] = read_rows(activation, lengths, read_at).detach().float().cpu()

            return read

        read_forward(
            model,
            ids,
            mask,
            position_ids_for(mask),
            [(n, reader(n)) for n in names],
            last_layer=last_layer,
        )
        yield {n: grabbed[n] for n in names}


@torch.no_grad()
def capture_activations(
    model: HookedModel,
    sequences: Sequence[tuple[TokenIds, TokenIds]],
    hook_names: Sequence[str],
    *,
    read_at: ReadAt = "last",
    batch_size: int = 16,
) -> dict[str, Float[Tensor, "seq d_act"]]:
    """Return each hook's activation for each (prompt ids, response ids) sequence.

    `read_at="last"` reads the final token; `"response_mean"` averages over response tokens.
    """
    chunks: dict[str, list[Tensor]] = {n: [] for n in hook_names}
    for acts in iter_activations(
        model, sequences, hook_names, read_at=read_at, batch_size=batch_size
    ):
        for n, a in acts.items():
            chunks[n].append(a)
    return {n: torch.cat(parts) for n, parts in chunks.items()}


@dataclass(frozen=True)
class ContrastMeans:
    """Per-group mean activations on each side of the contrast, for each hook.

    `positive[name]` and `negative[name]` are `(group, d_act)`; `weights` the groups' pair
    weights; `n_pairs` their pair counts (for the plain, pair-weighted mean).
    """

    item_ids: list[str]
    positive: dict[str, Float[Tensor, "group d_act"]]
    negative: dict[str, Float[Tensor, "group d_act"]]
    weights: Float[Tensor, " group"]
    n_pairs: Float[Tensor, " group"]

    def differences(self, name: str) -> Float[Tensor, "group d_act"]:
        """Each group's mean pair difference mu_g at hook `name`."""
        return self.positive[name] - self.negative[name]


@torch.no_grad()
def contrast_means(
    model: HookedModel,
    contrasts: ContrastSet,
    hook_names: Sequence[str],
    *,
    read_at: ReadAt = "last",
    batch_size: int = 16,
    progress: bool = True,
) -> ContrastMeans:
    """Teacher-force every sequence of every group and average activations per group and side."""
    groups = contrasts.groups
    if not groups:
        raise ValueError(
            "the contrast set is empty: no prompt had both a correct and an incorrect rollout "
            f"(counts: {contrasts.counts}); sample more rollouts per prompt, use more prompts, "
            "or turn off strict mode to allow the gold/wrong-answer fallbacks"
        )
    flat: list[tuple[TokenIds, TokenIds]] = []
    slots: list[int] = []  # 2·group + side, side 0 for positive and 1 for negative
    for g, group in enumerate(groups):
        for side, sequences in enumerate((group.positives, group.negatives)):
            flat.extend(sequences)
            slots.extend([2 * g + side] * len(sequences))
    slot = torch.tensor(slots)
    n_groups = len(groups)
    sums: dict[str, Tensor] = {}
    bar = tqdm(total=len(flat), desc="activations", unit="seq", disable=not progress)
    start = 0
    for acts in iter_activations(model, flat, hook_names, read_at=read_at, batch_size=batch_size):
        n = len(next(iter(acts.values())))
        where = slot[start : start + n]
        for name, a in acts.items():
            if name not in sums:
                sums[name] = torch.zeros(n_groups * 2, a.shape[-1], dtype=torch.float64)
            sums[name].index_add_(0, where, a.double())
        start += n
        bar.update(n)
    bar.close()
    counts = torch.bincount(slot, minlength=2 * n_groups).double()
    means = {n: (s / counts[:, None]).float().view(n_groups, 2, -1) for n, s in sums.items()}
    return ContrastMeans(
        item_ids=[g.item_id for g in groups],
        positive={n: m[:, 0] for n, m in means.items()},
        negative={n: m[:, 1] for n, m in means.items()},
        weights=torch.tensor([float(g.weight) for g in groups]),
        n_pairs=torch.tensor([float(g.n_pairs) for g in groups]),
    )
