"""Teacher-forced activation capture at one position, accumulated per contrast group.

Only the requested hook points are read, the forward stops after the last needed block, and
activations are summed per group as they arrive, so memory does not grow with the rollouts.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from jaxtyping import Float
from torch import Tensor
from tqdm.auto import tqdm

from roast_tl.generation import forward_step, left_pad, pad_id, position_ids_for
from roast_tl.pairs import ContrastSet
from roast_tl.sites import check_hook_names, hook_name, layer_of

ReadPosition = Literal["last", "response_mean"]
READ_POSITIONS: tuple[str, ...] = ("last", "response_mean")


class _StopForward(Exception):
    """Raised by a hook after the last needed block, to skip the rest of the forward."""


def _read(activation: Tensor, response_lengths: Tensor, position: str) -> Tensor:
    if position == "last":
        return activation[:, -1, :]
    n_pos = activation.shape[1]
    index = torch.arange(n_pos, device=activation.device)
    start = (n_pos - response_lengths.clamp_min(1)).to(activation.device)
    mask = (index[None, :] >= start[:, None]).to(activation.dtype)
    return (activation * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)


def _reading_hook(store: dict[str, Tensor], name: str, lengths: Tensor, position: str) -> Any:
    def read(activation: Tensor, hook: Any) -> None:
        store[name] = _read(activation, lengths, position).detach().float().cpu()

    return read


def _stop_hook(activation: Tensor, hook: Any) -> None:
    raise _StopForward


@torch.no_grad()
def capture_activations(
    model: Any,
    sequences: Sequence[tuple[list[int], list[int]]],
    hook_names: Sequence[str],
    *,
    position: ReadPosition = "last",
    batch_size: int = 16,
) -> dict[str, Float[Tensor, "seq d_act"]]:
    """Return each hook's activation for each (prompt ids, response ids) sequence.

    `position="last"` reads the final token; `"response_mean"` averages over response tokens.
    """
    if position not in READ_POSITIONS:
        raise ValueError(f"unknown read position {position!r}; choose one of {list(READ_POSITIONS)}")
    if not sequences:
        raise ValueError("no sequences to read activations from")
    names = list(hook_names)
    check_hook_names(model, names)
    layers = [layer_of(n) for n in names]
    stop_layer = None if any(layer is None for layer in layers) else max(layers)  # type: ignore[type-var]
    pad = pad_id(model)
    out: dict[str, list[Tensor]] = {n: [] for n in names}
    for start in range(0, len(sequences), batch_size):
        batch = sequences[start : start + batch_size]
        ids, mask = left_pad([p + r for p, r in batch], pad)
        lengths = torch.tensor([len(r) for _, r in batch])
        grabbed: dict[str, Tensor] = {}
        fwd_hooks: list[tuple[str, Any]] = [
            (n, _reading_hook(grabbed, n, lengths, position)) for n in names
        ]
        if stop_layer is not None and stop_layer < model.cfg.n_layers - 1:
            fwd_hooks.append((hook_name("resid_post", stop_layer), _stop_hook))
        with model.hooks(fwd_hooks=fwd_hooks):
            try:
                forward_step(model, ids, mask, position_ids_for(mask), use_cache=False)
            except _StopForward:
                pass
        for n in names:
            out[n].append(grabbed[n])
    return {n: torch.cat(chunks) for n, chunks in out.items()}


@dataclass
class ContrastMeans:
    """Per-group mean activations on each side of the contrast, for each hook.

    `positive[name]` and `negative[name]` are `(group, d_act)`; `weights` the groups' pair
    weights; `n_pairs` their pair counts (for the plain, pair-weighted mean).
    """

    item_ids: list[str]
    positive: dict[str, Tensor]
    negative: dict[str, Tensor]
    weights: Tensor
    n_pairs: Tensor

    def differences(self, name: str) -> Float[Tensor, "group d_act"]:
        """Each group's mean pair difference mu_g at hook `name`."""
        return self.positive[name] - self.negative[name]


@torch.no_grad()
def contrast_means(
    model: Any,
    contrasts: ContrastSet,
    hook_names: Sequence[str],
    *,
    position: ReadPosition = "last",
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
    names = list(hook_names)
    flat: list[tuple[list[int], list[int]]] = []
    side_index: list[tuple[int, int]] = []  # (group, 0 for positive / 1 for negative)
    for g, group in enumerate(groups):
        for seq in group.positives:
            flat.append(seq)
            side_index.append((g, 0))
        for seq in group.negatives:
            flat.append(seq)
            side_index.append((g, 1))
    n_groups = len(groups)
    sums: dict[str, Tensor] = {}
    counts = torch.zeros(n_groups, 2)
    bar = tqdm(total=len(flat), desc="activations", unit="seq", disable=not progress)
    for start in range(0, len(flat), batch_size):
        chunk = flat[start : start + batch_size]
        where = torch.tensor(side_index[start : start + batch_size])
        acts = capture_activations(model, chunk, names, position=position, batch_size=batch_size)
        slot = where[:, 0] * 2 + where[:, 1]
        for n, a in acts.items():
            if n not in sums:
                sums[n] = torch.zeros(n_groups * 2, a.shape[-1], dtype=torch.float64)
            sums[n].index_add_(0, slot, a.double())
        counts.view(-1).index_add_(0, slot, torch.ones(len(chunk)))
        bar.update(len(chunk))
    bar.close()
    means = {n: (s.view(n_groups, 2, -1) / counts[..., None].double()).float() for n, s in sums.items()}
    return ContrastMeans(
        item_ids=[g.item_id for g in groups],
        positive={n: m[:, 0] for n, m in means.items()},
        negative={n: m[:, 1] for n, m in means.items()},
        weights=torch.tensor([g.weight for g in groups]),
        n_pairs=torch.tensor([float(g.n_pairs) for g in groups]),
    )
