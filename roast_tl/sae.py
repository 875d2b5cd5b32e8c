"""SAELens sparse autoencoders (SAEs) and steering vectors: steer with a latent, explain a vector.

    from roast_tl.sae import latent_vector, explain_in_latents

    with roast_tl.steer(model, latent_vector(sae, 123, model), alpha=4.0): ...
    for match in explain_in_latents(vector, sae, top_k=5): print(match.latent, match.cosine)

Both read the SAE's decoder `W_dec` [d_sae, d_in] and the hook it was trained at
(`sae.cfg.metadata.hook_name`). They run on the hooked backend (TransformerLens 3.x), where
SAELens installs: `pip install "roast_tl[sae]"`. sae_lens itself is imported only when asked for.
"""

from typing import Any, NamedTuple

import torch
from jaxtyping import Float
from torch import Tensor

from roast_tl._types import HookedModel
from roast_tl.sites import check_hook_names, model_name
from roast_tl.vector import SteeringVector

_INSTALL_HINT = (
    'SAELens is not installed; pip install "roast_tl[sae]" (it needs transformer-lens 3.x, '
    "the hooked backend)"
)


def require_sae_lens() -> Any:
    """Import and return `sae_lens`; an ImportError saying how to install it when missing."""
    try:
        import sae_lens
    except ImportError as error:
        raise ImportError(_INSTALL_HINT) from error
    return sae_lens


class LatentMatch(NamedTuple):
    """An SAE latent and the cosine between its decoder direction and a steering vector."""

    latent: int
    cosine: float


def sae_hook_name(sae: Any) -> str:
    """The hook name the SAE reads (`sae.cfg.metadata.hook_name`); a ValueError if unrecorded."""
    metadata = getattr(getattr(sae, "cfg", None), "metadata", None)
    name = getattr(metadata, "hook_name", None)
    if not isinstance(name, str) or not name:
        raise ValueError(
            "this SAE records no hook name (sae.cfg.metadata.hook_name); set it to the hook it "
            'was trained on, e.g. sae.cfg.metadata.hook_name = "blocks.10.hook_resid_post"'
        )
    return name


def _decoder(sae: Any) -> Float[Tensor, "d_sae d_in"]:
    decoder = getattr(sae, "W_dec", None)
    if not isinstance(decoder, Tensor) or decoder.ndim != 2:
        raise TypeError(
            f"expected an SAELens SAE with a 2-D decoder W_dec, got {type(sae).__name__}"
        )
    return decoder.detach()


def decoder_cosines(
    direction: Float[Tensor, " d_in"], decoder: Float[Tensor, "d_sae d_in"]
) -> Float[Tensor, " d_sae"]:
    """Cosine between `direction` and each decoder row (0 for an all-zero row).

    >>> rows = torch.tensor([[2.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    >>> decoder_cosines(torch.tensor([1.0, 0.0]), rows)
    tensor([1.0000, 0.7071, 0.0000])
    """
    rows = torch.nn.functional.normalize(decoder.float(), dim=-1)
    unit = torch.nn.functional.normalize(direction.float(), dim=0)
    return rows @ unit


def latent_vector(sae: Any, latent: int, model: HookedModel | None = None) -> SteeringVector:
    """A `SteeringVector` of SAE latent `latent`'s decoder row, at the SAE's hook.

    The row is used as SAELens stores it (not renormalized), so `alpha` multiplies the
    latent's own scale. With `model`, the hook name is checked against it and the vector records
    the model's name (so `steer` accepts it for that model only).
    """
    decoder = _decoder(sae)
    if not 0 <= latent < decoder.shape[0]:
        raise ValueError(
            f"latent {latent} is out of range for an SAE of {decoder.shape[0]} latents"
        )
    hook = sae_hook_name(sae)
    metadata: dict[str, Any] = {"source": "sae_latent", "sae_latent": int(latent)}
    if model is not None:
        check_hook_names(model, [hook])
        metadata["model_name"] = model_name(model)
    return SteeringVector({hook: decoder[latent].float().cpu().clone()}, metadata)


def explain_in_latents(vector: SteeringVector, sae: Any, *, top_k: int = 10) -> list[LatentMatch]:
    """The `top_k` SAE latents whose decoder directions are closest (by cosine, highest first)
    to `vector` at the SAE's hook, with their cosines."""
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    hook = sae_hook_name(sae)
    if hook not in vector.hook_names:
        raise ValueError(
            f"the SAE reads {hook!r} but the vector has no entry there (it has "
            f"{vector.hook_names}); use an SAE trained at one of the vector's hooks"
        )
    decoder = _decoder(sae)
    direction = vector[hook]
    if direction.shape[0] != decoder.shape[1]:
        raise ValueError(
            f"the vector at {hook!r} has width {direction.shape[0]} but the SAE's d_in is "
            f"{decoder.shape[1]}; they were made for different models"
        )
    cosines = decoder_cosines(direction.to(decoder.device), decoder)
    values, latents = cosines.topk(min(top_k, cosines.shape[0]))
    return [
        LatentMatch(int(i), float(c))
        for i, c in zip(latents.tolist(), values.tolist(), strict=True)
    ]
