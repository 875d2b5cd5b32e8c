"""`SteeringVector`: one vector per hook name plus metadata, saved as one safetensors file.

The file holds the tensors (keyed by hook name) and the metadata as JSON in the safetensors
header, and is written atomically (temp file, fsync, rename) so a crash never leaves half a file.
"""

import json
import os
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Float
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes
from torch import Tensor

from roast_tl._fingerprint import model_fingerprint
from roast_tl._io import atomic_write_bytes
from roast_tl._types import HookedModel, HookFn, Positions, SteeringMode
from roast_tl._warnings import RoastWarning
from roast_tl.hooks import SteeringHook, check_alpha, check_direction
from roast_tl.sites import check_hook_names, model_name, site_width

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

    def fwd_hooks(
        self, alpha: float, *, positions: Positions = "last", mode: SteeringMode = "add"
    ) -> list[tuple[str, HookFn]]:
        """Return a TL `fwd_hooks` list adding alpha·v at `positions` ("last", "all", "prefill").

        The one way to get steering hooks: pass the list to `run_with_hooks`, `hooks()`,
        `run_with_cache` or `transformer_lens.patching`.

            model.run_with_hooks(tokens, fwd_hooks=vector.fwd_hooks(4.0))
        """
        alpha = check_alpha(alpha)
        return [
            (name, SteeringHook(v, alpha, positions=positions, mode=mode, name=name))
            for name, v in self.vectors.items()
        ]

    def check_model(self, model: HookedModel, *, allow_other_model: bool = False) -> None:
        """Raise a ValueError if these vectors cannot steer `model` (names, widths, model name).

        The model check passes when the recorded `model_name` (or `model_fingerprint`) matches
        `model`, or when `allow_other_model` is True here or on the vector (set by `load`).
        """
        check_hook_names(model, self.hook_names)
        for name, v in self.vectors.items():
            width = site_width(model, name)
            if width is not None and width != v.shape[0]:
                raise ValueError(
                    f"vector for {name!r} has width {v.shape[0]} but this model's activations "
                    f"there have width {width}; it was made for another model or site"
                )
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
            f"this vector was made for model {made_for!r}; this model is {model_name(model)!r}. "
            "If it fits anyway, pass allow_other_model=True (to SteeringVector.load, steer or "
            "evaluate) or --allow-other-model (roast-tl)"
        )

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
