"""`SteeringVector`: one vector per hook name plus metadata, saved as one safetensors file.

The file holds the tensors (keyed by hook name) and the metadata as JSON in the safetensors
header, and is written atomically (temp file, fsync, rename) so a crash never leaves half a file.
"""

import json
import os
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import torch
from jaxtyping import Float
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes
from torch import Tensor

from roast_tl._fingerprint import model_fingerprint
from roast_tl._io import atomic_write_bytes
from roast_tl._types import AlphaScale, HookedModel, HookFn, PositionSpec, SteeringMode
from roast_tl._warnings import RoastWarning
from roast_tl.hooks import PassTokens, SteeringHook, check_alpha, check_direction
from roast_tl.scaling import l2_normalize, max_norm
from roast_tl.sites import (
    check_hook_names,
    describe_model,
    model_name,
    site_width,
    token_hook_name,
)

FORMAT_VERSION = 1
_METADATA_KEY = "roast_tl"


class SteeringVector:
    """Steering directions keyed by hook name, with the metadata that says how they were made.

    >>> v = SteeringVector({"blocks.0.hook_resid_post": torch.ones(4)}, {"model_name": "m"})
    >>> v["blocks.0.hook_resid_post"].shape, v.hook_names
    (torch.Size([4]), ['blocks.0.hook_resid_post'])
    """

    def __init__(
        self,
        vectors: Mapping[str, Float[Tensor, " d_act"]],
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        if not vectors:
            raise ValueError("a SteeringVector needs at least one (hook_name, vector) entry")
        clean: dict[str, Float[Tensor, " d_act"]] = {}
        for name, v in vectors.items():
            if not isinstance(name, str):
                raise TypeError(f"hook names must be strings, got {name!r}")
            if not isinstance(v, Tensor) or v.ndim != 1:
                shape = tuple(v.shape) if isinstance(v, Tensor) else type(v).__name__
                raise ValueError(f"vector for {name!r} must be a 1-D tensor (d_act,), got {shape}")
            check_direction(v, name)
            clean[name] = v.detach()
        self.vectors: dict[str, Float[Tensor, " d_act"]] = clean
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.allow_other_model = False
        """Set by `load(..., allow_other_model=True)` (never saved): `steer` and `evaluate` then
        accept this vector on a model other than the one its metadata names."""
        self._loaded_from: Path | None = None
        self._warned_unchecked = False

    def __getitem__(self, hook_name: str) -> Float[Tensor, " d_act"]:
        if hook_name not in self.vectors:
            raise KeyError(f"no vector for hook {hook_name!r}; this vector has {self.hook_names}")
        return self.vectors[hook_name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.vectors)

    def __len__(self) -> int:
        return len(self.vectors)

    def items(self) -> Iterator[tuple[str, Float[Tensor, " d_act"]]]:
        return iter(self.vectors.items())

    @property
    def hook_names(self) -> list[str]:
        return list(self.vectors)

    def __repr__(self) -> str:
        widths = {name: int(v.shape[0]) for name, v in self.vectors.items()}
        model = self.metadata.get("model_name", "?")
        return f"SteeringVector(model={model!r}, widths={widths})"

    def to(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> "SteeringVector":
        """Return a copy with every vector moved to `device` / cast to `dtype`."""
        moved = {n: v.to(device=device, dtype=dtype) for n, v in self.vectors.items()}
        copy = SteeringVector(moved, self.metadata)
        copy.allow_other_model = self.allow_other_model
        copy._loaded_from = self._loaded_from
        return copy

    @classmethod
    def from_direction(
        cls,
        hook_name: str | Mapping[str, Tensor],
        direction: Tensor | None = None,
        *,
        normalize: Literal["max_norm", "l2"] | None = "max_norm",
        model: HookedModel | None = None,
    ) -> "SteeringVector":
        """Make a vector from your own direction(s): a probe, an SAE decoder row, a difference.

        `hook_name` with `direction`, or `{hook_name: direction}`. `normalize="max_norm"` (the
        default) scales each to max |v| = 1 like ROAST's vectors, so the same alphas apply;
        `"l2"` to unit length; None keeps it as given. With `model`, the names and widths are
        checked and the model is recorded, so loading it elsewhere is checked too.

        >>> v = SteeringVector.from_direction("blocks.0.hook_resid_post", torch.tensor([2., -4.]))
        >>> v["blocks.0.hook_resid_post"].tolist()
        [0.5, -1.0]
        """
        if isinstance(hook_name, str):
            if direction is None:
                raise TypeError("from_direction(hook_name, direction): the direction is missing")
            raw: dict[str, Tensor] = {hook_name: direction}
        else:
            if direction is not None:
                raise TypeError("pass either {hook_name: direction} or hook_name, direction")
            raw = dict(hook_name)
        scale = {"max_norm": max_norm, "l2": l2_normalize, None: None}
        if normalize not in scale:
            raise ValueError(f"unknown normalize {normalize!r}; choose 'max_norm', 'l2' or None")
        scaler = scale[normalize]
        vectors = {}
        for name, v in raw.items():
            if isinstance(v, Tensor) and v.ndim == 1 and v.is_floating_point():
                check_direction(v, name)
                v = v.detach().float() if scaler is None else scaler(v.detach().float())
            vectors[name] = v
        metadata: dict[str, Any] = {"method": "direction", "normalize": normalize}
        if model is not None:
            metadata.update(describe_model(model))
            metadata["model_name"] = model_name(model)
        vector = cls(vectors, {**metadata, "hook_names": list(vectors)})
        if model is not None:
            vector.check_model(model)
        return vector

    def select(self, hook_names: str | list[str]) -> "SteeringVector":
        """Return a vector with only `hook_names` (in that order); `metadata["hook_names"]`
        follows.

        >>> v = SteeringVector({"a": torch.ones(2), "b": torch.ones(2)}, {"hook_names": ["a", "b"]})
        >>> v.select(["b"]).hook_names, v.select("b").metadata["hook_names"]
        (['b'], ['b'])
        """
        names = [hook_names] if isinstance(hook_names, str) else list(hook_names)
        missing = [name for name in names if name not in self.vectors]
        if missing:
            raise KeyError(f"no vector for hooks {missing}; this vector has {self.hook_names}")
        metadata = dict(self.metadata)
        if "hook_names" in metadata:
            metadata["hook_names"] = names
        copy = SteeringVector({name: self.vectors[name] for name in names}, metadata)
        copy.allow_other_model = self.allow_other_model
        copy._loaded_from = self._loaded_from
        return copy

    def fwd_hooks(
        self,
        alpha: float,
        *,
        positions: PositionSpec = "last",
        mode: SteeringMode = "add",
        model: HookedModel | None = None,
        attention_mask: Tensor | None = None,
        alpha_scale: AlphaScale | None = None,
        scale_tokens: Any = None,
    ) -> list[tuple[str, HookFn]]:
        """Return a TL `fwd_hooks` list adding alpha·v at `positions` (see `roast_tl.hooks`).

        The one way to get steering hooks: pass the list to `run_with_hooks`, `hooks()` or
        `transformer_lens.patching` (not to `run_with_cache(fwd_hooks=...)`, which TL 4
        accepts and ignores: wrap it in `model.hooks(...)` or `roast_tl.steer`).
        Padded batches: with `model` the list starts with a hook on the token input that tells
        the steering hooks where each row's real tokens are (right padding included); or give
        the batch's 0/1 `attention_mask`. `alpha_scale="resid_norm"` (needs `model` and
        `scale_tokens`) rescales each direction to the mean activation norm at its hook over
        `scale_tokens` (every position but each row's first, an attention sink with outlier
        norms), so alpha is a fraction of that norm: the added vector has norm alpha·mean‖h‖.

            model.run_with_hooks(tokens, fwd_hooks=vector.fwd_hooks(4.0))
        """
        alpha = check_alpha(alpha)
        vectors = self.vectors
        if alpha_scale is not None:
            if alpha_scale != "resid_norm":
                raise ValueError(f"unknown alpha_scale {alpha_scale!r}; choose 'resid_norm'")
            if model is None or scale_tokens is None:
                raise ValueError(
                    "alpha_scale='resid_norm' needs model= and scale_tokens= (prompts to "
                    "measure the activation norm on)"
                )
            norms = activation_norms(model, self.hook_names, scale_tokens)
            vectors = {name: _to_norm(v, norms[name]) for name, v in vectors.items()}
        tokens = None
        hooks: list[tuple[str, HookFn]] = []
        needs_padding = not (isinstance(positions, str) and positions == "all") and not (
            isinstance(positions, Tensor) and positions.dtype == torch.bool
        )
        token_hook = token_hook_name(model) if model is not None else None
        if model is not None and token_hook is not None and needs_padding:
            tokenizer = getattr(model, "tokenizer", None)
            pad = getattr(tokenizer, "pad_token_id", None)
            if pad is not None:
                tokens = PassTokens(int(pad), getattr(tokenizer, "bos_token_id", None))
                hooks.append((token_hook, tokens))
        for name, v in vectors.items():
            hook = SteeringHook(
                v,
                alpha,
                positions=positions,
                mode=mode,
                name=name,
                attention_mask=attention_mask,
                tokens=tokens,
            )
            hooks.append((name, hook))
        return hooks

    def check_model(self, model: HookedModel, *, allow_other_model: bool = False) -> None:
        """Raise a ValueError if these vectors cannot steer `model` (names, widths, model name).

        The model check passes when the recorded `model_name` (or `model_fingerprint`) matches
        `model`, or when `allow_other_model` is True here or on the vector (set by `load`).
        """
        try:
            check_hook_names(model, self.hook_names)
            for name, v in self.vectors.items():
                width = site_width(model, name)
                if width is not None and width != v.shape[0]:
                    raise ValueError(
                        f"vector for {name!r} has width {v.shape[0]} but this model's "
                        f"activations there have width {width}; it was made for another model "
                        "or site"
                    )
        except ValueError as err:
            if not self._made_for_another(model):
                raise
            raise ValueError(
                f"this vector was made for model {self._made_for()}; this model is "
                f"{_describe(model_name(model), describe_model(model))}, so it cannot steer "
                f"it ({err})"
            ) from err
        if allow_other_model or self.allow_other_model:
            return
        made_for = self.metadata.get("model_name")
        if not made_for:
            if self._loaded_from is not None and not self._warned_unchecked:
                self._warned_unchecked = True
                warnings.warn(
                    f"{self._loaded_from} records no model_name, so roast_tl cannot check that "
                    "it was made for this model; pass allow_other_model=True "
                    "(--allow-other-model) to silence this",
                    RoastWarning,
                    stacklevel=3,
                )
            return
        if _same_model(self.metadata, model):
            return
        raise ValueError(
            f"this vector was made for model {self._made_for()}; this model is "
            f"{_describe(model_name(model), describe_model(model))}. "
            "If it fits anyway, pass allow_other_model=True (to SteeringVector.load, steer or "
            "evaluate) or --allow-other-model (roast-tl)"
        )

    def _made_for(self) -> str:
        """The recorded model, as "'name' (n layers, d_model d)"."""
        shape: dict[str, Any] = {
            k: self.metadata[k] for k in ("n_layers", "d_model") if k in self.metadata
        }
        return _describe(str(self.metadata.get("model_name", "?")), shape)

    def _made_for_another(self, model: HookedModel) -> bool:
        """True when the metadata names a model and it differs from `model` (name or shape)."""
        if not self.metadata.get("model_name"):
            return False
        recorded = {k: self.metadata[k] for k in ("n_layers", "d_model") if k in self.metadata}
        shape = describe_model(model)
        if any(shape[k] != v for k, v in recorded.items()):
            return True
        return not _same_model(self.metadata, model)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the vectors and metadata to `path` (safetensors), atomically; return the path.

        An error (a folder at `path`, a read-only folder) names `path` and leaves any file
        already there untouched.
        """
        path = Path(path)
        metadata = {
            **self.metadata,
            "format_version": FORMAT_VERSION,
            "tensor_order": self.hook_names,
        }
        tensors = {name: v.detach().to("cpu").contiguous() for name, v in self.vectors.items()}
        payload = save_safetensors_bytes(tensors, metadata={_METADATA_KEY: json.dumps(metadata)})
        if path.is_dir():
            raise IsADirectoryError(
                f"cannot save the steering vector to {path}: it is a folder; pass a file path "
                f"such as {path / 'vector.safetensors'}"
            )
        try:
            atomic_write_bytes(path, payload)
        except OSError as err:
            reason = err.strerror or str(err)
            raise OSError(
                err.errno,
                f"cannot save the steering vector to {path}: {reason}; pass a path "
                "in a folder you can write to",
            ) from err
        return path

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        model: HookedModel | None = None,
        *,
        allow_other_model: bool = False,
    ) -> "SteeringVector":
        """Read a vector saved by `save`; with `model`, also check that it fits that model.

        `allow_other_model=True` is remembered on the vector (`vector.allow_other_model`), so a
        later `steer` or `evaluate` accepts it too.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no steering vector file at {path}")
        data = path.read_bytes()
        try:
            tensors = load_safetensors_bytes(data)
            header = _read_header_metadata(data)
        except (SafetensorError, ValueError, json.JSONDecodeError) as err:
            raise ValueError(
                f"{path} is not a readable steering vector file (corrupt or truncated: {err}); "
                "re-save it with SteeringVector.save"
            ) from err
        if _METADATA_KEY not in header:
            raise ValueError(f"{path} is a safetensors file but not a roast_tl steering vector")
        metadata = _parse_metadata(path, header[_METADATA_KEY])
        order = metadata.pop("tensor_order", None) or list(tensors)
        if not isinstance(order, list) or sorted(map(str, order)) != sorted(tensors):
            raise ValueError(
                f"{path}: metadata lists hooks {order} but the file holds {sorted(tensors)}"
            )
        for name, tensor in tensors.items():
            if not tensor.is_floating_point():
                raise ValueError(
                    f"{path}: the vector for {name!r} has dtype {tensor.dtype}, not floating "
                    "point; a steering vector file holds float tensors (re-save it)"
                )
        try:
            vector = cls({name: tensors[name] for name in order}, metadata)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from err
        vector.allow_other_model = allow_other_model
        vector._loaded_from = path
        if model is not None:
            vector.check_model(model)
        return vector


def _describe(name: str, shape: Mapping[str, Any]) -> str:
    """ "'x' (30 layers, d_model 576)", with whatever of the shape is known."""
    parts = []
    if "n_layers" in shape:
        parts.append(f"{shape['n_layers']} layers")
    if "d_model" in shape:
        parts.append(f"d_model {shape['d_model']}")
    return repr(name) + (f" ({', '.join(parts)})" if parts else "")


def _same_model(metadata: Mapping[str, Any], model: HookedModel) -> bool:
    """True when the vector's recorded model is `model`: the same name or the same fingerprint."""
    if metadata.get("model_name") == model_name(model):
        return True
    recorded = metadata.get("model_fingerprint")
    return bool(recorded) and recorded == model_fingerprint(model)


def _parse_metadata(path: Path, text: str) -> dict[str, Any]:
    """Return the roast_tl metadata object of the file at `path`; errors name the file."""
    try:
        metadata = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(
            f"{path}: its roast_tl metadata is not valid JSON ({err.msg}); the file is corrupt "
            "or was not written by SteeringVector.save; re-save it"
        ) from err
    if not isinstance(metadata, dict):
        raise ValueError(
            f"{path}: its roast_tl metadata must be a JSON object, got "
            f"{type(metadata).__name__}; re-save it with SteeringVector.save"
        )
    version = metadata.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(
            f"{path} has a missing or malformed format_version ({version!r}, expected a positive "
            "integer); it was not written by SteeringVector.save or is corrupt; re-save it"
        )
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{path} has format_version {version!r}, newer than this roast_tl understands "
            f"({FORMAT_VERSION}); upgrade roast_tl to load it"
        )
    made_for = metadata.get("model_name")
    if made_for is not None and not isinstance(made_for, str):
        raise ValueError(
            f"{path}: model_name must be a string, got {made_for!r}; re-save the vector"
        )
    return metadata


def _read_header_metadata(data: bytes) -> dict[str, str]:
    if len(data) < 8:
        raise ValueError("file shorter than a safetensors header")
    header_len = int.from_bytes(data[:8], "little")
    if header_len > len(data) - 8:
        raise ValueError("header runs past the end of the file")
    header = json.loads(data[8 : 8 + header_len])
    return dict(header.get("__metadata__", {}))


@torch.no_grad()
def activation_norms(model: HookedModel, hook_names: list[str], tokens: Any) -> dict[str, float]:
    """Return the mean L2 norm of the activation at each hook over `tokens` (what the model
    takes: ids or text), every position but each row's first (an attention sink with outlier
    norms; a one-token input keeps it). Pass unpadded prompts: pad positions would count."""
    run_with_cache = getattr(model, "run_with_cache", None)
    if run_with_cache is None:
        raise TypeError("alpha_scale='resid_norm' needs a model with run_with_cache")
    _, cache = run_with_cache(tokens, names_filter=list(hook_names))
    norms = {}
    for name in hook_names:
        activation = cache[name]
        if activation.shape[1] > 1:
            activation = activation[:, 1:]
        norms[name] = float(activation.float().norm(dim=-1).mean())
    return norms


def _to_norm(vector: Tensor, norm: float) -> Tensor:
    """`vector` rescaled to L2 norm `norm` (zero stays zero)."""
    length = float(vector.float().norm())
    return vector if length == 0.0 else vector * (norm / length)
