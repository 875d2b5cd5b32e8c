"""`SteeringVector`: one vector per hook name plus metadata, saved as one safetensors file.

The file holds the tensors (keyed by hook name) and the metadata as JSON in the safetensors
header, and is written atomically (temp file, fsync, rename) so a crash never leaves half a file.
"""

import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Float
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes
from torch import Tensor

from roast_tl._io import atomic_write_bytes
from roast_tl._types import HookedModel, HookFn, Positions, SteeringMode
from roast_tl.hooks import SteeringHook, check_alpha
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
            if not torch.isfinite(v).all():
                raise ValueError(f"vector for {name!r} contains NaN or inf")
            clean[name] = v.detach()
        self.vectors: dict[str, Float[Tensor, " d_act"]] = clean
        self.metadata: dict[str, Any] = dict(metadata or {})

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
        return SteeringVector(moved, self.metadata)

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
        """Raise a ValueError if these vectors cannot steer `model` (names, widths, model name)."""
        check_hook_names(model, self.hook_names)
        for name, v in self.vectors.items():
            width = site_width(model, name)
            if width is not None and width != v.shape[0]:
                raise ValueError(
                    f"vector for {name!r} has width {v.shape[0]} but this model's activations "
                    f"there have width {width}; it was made for another model or site"
                )
        made_for = self.metadata.get("model_name")
        if made_for and not allow_other_model and made_for != model_name(model):
            raise ValueError(
                f"this vector was made for model {made_for!r} but the model is "
                f"{model_name(model)!r}; pass allow_other_model=True to use it anyway"
            )

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the vectors and metadata to `path` (safetensors), atomically; return the path."""
        path = Path(path)
        metadata = {
            **self.metadata,
            "format_version": FORMAT_VERSION,
            "tensor_order": self.hook_names,
        }
        tensors = {name: v.detach().to("cpu").contiguous() for name, v in self.vectors.items()}
        payload = save_safetensors_bytes(tensors, metadata={_METADATA_KEY: json.dumps(metadata)})
        atomic_write_bytes(path, payload)
        return path

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        model: HookedModel | None = None,
        *,
        allow_other_model: bool = False,
    ) -> "SteeringVector":
        """Read a vector saved by `save`; with `model`, also check that it fits that model."""
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
        metadata = json.loads(header[_METADATA_KEY])
        version = metadata.get("format_version")
        if not isinstance(version, int):
            raise ValueError(
                f"{path} has a missing or malformed format_version ({version!r}); it was not "
                "written by SteeringVector.save or is corrupt; re-save it"
            )
        if version > FORMAT_VERSION:
            raise ValueError(
                f"{path} has format_version {version!r}, newer than this roast_tl understands "
                f"({FORMAT_VERSION}); upgrade roast_tl to load it"
            )
        order = metadata.pop("tensor_order", None) or list(tensors)
        if sorted(order) != sorted(tensors):
            raise ValueError(
                f"{path}: metadata lists hooks {order} but the file holds {sorted(tensors)}"
            )
        vector = cls({name: tensors[name] for name in order}, metadata)
        if model is not None:
            vector.check_model(model, allow_other_model=allow_other_model)
        return vector


def _read_header_metadata(data: bytes) -> dict[str, str]:
    if len(data) < 8:
        raise ValueError("file shorter than a safetensors header")
    header_len = int.from_bytes(data[:8], "little")
    if header_len > len(data) - 8:
        raise ValueError("header runs past the end of the file")
    header = json.loads(data[8 : 8 + header_len])
    return dict(header.get("__metadata__", {}))
