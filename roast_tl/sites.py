"""Hook names for a site and layer, their validation, and what a model is (name, widths).

The one place that knows TransformerLens hook spellings: sites map to the familiar
`blocks.{layer}.hook_resid_post`-style aliases, which TL 4.x bridges keep in `hook_dict`.
"""

import difflib
import re

from roast_tl._types import HookedModel

SITE_TEMPLATES: dict[str, str] = {
    "resid_pre": "blocks.{layer}.hook_resid_pre",
    "resid_mid": "blocks.{layer}.hook_resid_mid",
    "resid_post": "blocks.{layer}.hook_resid_post",
    "attn_out": "blocks.{layer}.hook_attn_out",
    "mlp_out": "blocks.{layer}.hook_mlp_out",
    # The MLP's hidden activation, act(gate) * up: SADI's and the ROAST authors' neuron site.
    "mlp_post": "blocks.{layer}.mlp.hook_post",
}

SITE_ALIASES: dict[str, str] = {"post": "mlp_post"}
"""TransformerLens `get_act_name` short names that differ from roast_tl's site names."""

TOKEN_HOOKS = ("embed.hook_in", "hook_tokens")
"""The hook points that see the token ids a model is called with: the bridge's, and a
HookedTransformer's (present when `cfg.use_hook_tokens`, which roast_tl's hooked loader sets)."""

_LAYER_PATTERN = re.compile(r"^blocks\.(\d+)\.")


def canonical_site(site: str) -> str:
    """Return roast_tl's name for `site` (TL's `"post"` is `"mlp_post"`); others unchanged."""
    return SITE_ALIASES.get(site, site)


def hook_name(site: str, layer: int) -> str:
    """Return the hook name of `site` at `layer`; TL's `get_act_name` short names work too
    (`"post"` is `"mlp_post"`).

    >>> hook_name("resid_post", 3), hook_name("post", 3)
    ('blocks.3.hook_resid_post', 'blocks.3.mlp.hook_post')
    """
    site = canonical_site(site)
    if site not in SITE_TEMPLATES:
        raise ValueError(
            f"unknown hook site {site!r}; choose one of {list(SITE_TEMPLATES)} "
            f"(or TL's short names {list(SITE_ALIASES)})"
        )
    return SITE_TEMPLATES[site].format(layer=layer)


def site_of(name: str) -> str | None:
    """Return the site a hook name belongs to ("blocks.3.mlp.hook_post" -> "mlp_post"), or None.

    >>> site_of("blocks.3.mlp.hook_post"), site_of("hook_embed")
    ('mlp_post', None)
    """
    for site, template in SITE_TEMPLATES.items():
        if re.fullmatch(re.escape(template).replace(re.escape("{layer}"), r"\d+"), name):
            return site
    return None


def layer_of(name: str) -> int | None:
    """Return the block index in a hook name ("blocks.3.hook_resid_post" -> 3), or None."""
    match = _LAYER_PATTERN.match(name)
    return int(match.group(1)) if match else None


def check_hook_names(model: HookedModel, names: list[str]) -> None:
    """Raise a ValueError naming a hook name `model` does not have (with close matches), a
    repeated name, or two names that are aliases of one HookPoint.

    TL 4.x bridges keep several names for one HookPoint (`blocks.1.hook_resid_post` is
    `blocks.1.hook_out`); steering or reading both would act on it twice.
    """
    if not names:
        raise ValueError("no hook names given; pass layers=[...] or hook_names=[...]")
    hook_dict = model.hook_dict
    for name in names:
        if name not in hook_dict and site_of(name) == "resid_mid" and _parallel_blocks(model):
            raise ValueError(
                f"{name!r}: this model ({model_name(model)}) runs attention and MLP in parallel "
                "in each block (GPT-NeoX, GPT-J, Phi, Falcon style), so it has no resid_mid; "
                "use resid_pre, resid_post, attn_out or mlp_out"
            )
        if name not in hook_dict:
            close = difflib.get_close_matches(name, list(hook_dict), n=3, cutoff=0.6)
            hint = f"; did you mean {close}?" if close else "; see model.hook_dict for valid names"
            raise ValueError(f"unknown hook name {name!r} for this model{hint}")
    if len(set(names)) != len(names):
        repeated = sorted({name for name in names if names.count(name) > 1})
        raise ValueError(f"hook names repeat: {repeated}; name each hook once")
    by_point: dict[int, list[str]] = {}
    for name in names:
        by_point.setdefault(id(hook_dict[name]), []).append(name)
    aliases = [group for group in by_point.values() if len(group) > 1]
    if aliases:
        shown = "; ".join(" and ".join(repr(n) for n in group) for group in aliases)
        raise ValueError(
            f"hook names {shown} are aliases of one HookPoint on this model, so it would be "
            "hooked twice; keep one name of each"
        )


def resolve_hook_names(
    model: HookedModel,
    *,
    layers: list[int] | int | None = None,
    site: str = "resid_post",
    hook_names: list[str] | None = None,
) -> list[str]:
    """Return validated hook names: `hook_names` as given, or `site` at each of `layers`.

    Layers may be negative (counted from the end). With neither given, the layer one third of
    the way through the model is used. Repeated names, and two names of one HookPoint (aliases
    such as `blocks.1.hook_resid_post` and `blocks.1.hook_out`), are refused.
    """
    n_layers = model.cfg.n_layers
    if hook_names is not None:
        if layers is not None:
            raise ValueError("pass either layers= or hook_names=, not both")
        names = list(hook_names)
    else:
        if layers is None:
            layers = [n_layers // 3]
        elif isinstance(layers, int):
            layers = [layers]
        names = []
        for layer in layers:
            if not -n_layers <= layer < n_layers:
                raise ValueError(
                    f"layer {layer} is out of range for a model with {n_layers} layers "
                    f"(valid: 0..{n_layers - 1}, or negative from the end)"
                )
            names.append(hook_name(site, layer % n_layers))
    check_hook_names(model, names)
    return names


def _parallel_blocks(model: HookedModel) -> bool:
    """True when block 0 has no resid_mid but has resid_pre: attention and MLP in parallel."""
    names = model.hook_dict
    return "blocks.0.hook_resid_mid" not in names and "blocks.0.hook_resid_pre" in names


def token_hook_name(model: HookedModel) -> str | None:
    """The hook point that sees the model's input token ids, or None when it has none."""
    return next((name for name in TOKEN_HOOKS if name in model.hook_dict), None)


def describe_model(model: HookedModel) -> dict[str, int]:
    """The shape a vector records about its model: `n_layers` and `d_model`."""
    return {"n_layers": int(model.cfg.n_layers), "d_model": int(model.cfg.d_model)}


def model_name(model: HookedModel) -> str:
    """Return the model's name as TransformerLens records it (cfg.model_name)."""
    return str(getattr(model.cfg, "model_name", "unknown"))


_D_MODEL_SITE = re.compile(
    r"^blocks\.\d+\.(hook_resid_pre|hook_resid_mid|hook_resid_post|hook_attn_out|hook_mlp_out"
    r"|hook_in|hook_out)$"
)
_D_MLP_SITE = re.compile(r"^blocks\.\d+\.mlp\.(hook_post|hook_pre)$")


def site_width(model: HookedModel, name: str) -> int | None:
    """Return the expected width of activations at hook `name`, or None when it is not known."""
    if _D_MODEL_SITE.match(name):
        return int(model.cfg.d_model)
    d_mlp = getattr(model.cfg, "d_mlp", None)
    if _D_MLP_SITE.match(name) and d_mlp:
        return int(d_mlp)
    return None
