"""Hook names for sites and layers, their validation, and what a model is (name, widths)."""

import pytest

from roast_tl.sites import (
    SITE_TEMPLATES,
    canonical_site,
    check_hook_names,
    hook_name,
    layer_of,
    model_name,
    resolve_hook_names,
    site_of,
    site_width,
)
from tests.tiny_model import requires_bridge


@pytest.mark.parametrize("site", list(SITE_TEMPLATES))
def test_every_site_names_a_hook_of_the_model_and_maps_back(tiny_model, site):
    name = hook_name(site, 2)
    assert name in tiny_model.hook_dict
    assert (site_of(name), layer_of(name)) == (site, 2)


def test_hook_name_spellings_and_unknown_site():
    assert hook_name("resid_post", 3) == "blocks.3.hook_resid_post"
    assert hook_name("mlp_post", 0) == "blocks.0.mlp.hook_post"
    assert (site_of("hook_embed"), layer_of("hook_embed")) == (None, None)
    assert site_of("blocks.3.hook_resid_post_extra") is None
    with pytest.raises(ValueError, match="unknown hook site 'resid'.*'resid_post'.*short names"):
        hook_name("resid", 1)


def test_tl_short_site_names_are_aliases(tiny_model):
    assert hook_name("post", 1) == hook_name("mlp_post", 1) == "blocks.1.mlp.hook_post"
    assert canonical_site("post") == "mlp_post" and canonical_site("resid_pre") == "resid_pre"
    assert resolve_hook_names(tiny_model, layers=[1], site="post") == ["blocks.1.mlp.hook_post"]


def test_a_model_without_resid_mid_is_named_as_parallel_only_when_it_is(tiny_model):
    class Parallel:  # a model whose blocks have resid_pre and resid_post but no resid_mid
        cfg, tokenizer = tiny_model.cfg, tiny_model.tokenizer
        hook_dict = {k: v for k, v in tiny_model.hook_dict.items() if "resid_mid" not in k}
        hooks, parameters = tiny_model.hooks, tiny_model.parameters

    with pytest.raises(ValueError, match="runs attention and MLP in parallel .* no resid_mid"):
        check_hook_names(Parallel(), ["blocks.1.hook_resid_mid"])
    with pytest.raises(ValueError, match="did you mean"):  # a typo on a serial model: no claim
        check_hook_names(tiny_model, ["blocks.1.hook_resid_mdi"])


def test_unknown_hook_name_suggests_the_close_one(tiny_model):
    with pytest.raises(
        ValueError,
        match=r"unknown hook name 'blocks\.1\.hook_resid_pots'.*did you mean.*"
        r"blocks\.1\.hook_resid_post",
    ):
        resolve_hook_names(tiny_model, hook_names=["blocks.1.hook_resid_pots"])
    with pytest.raises(ValueError, match="unknown hook name 'zzz'.*see model.hook_dict"):
        check_hook_names(tiny_model, ["zzz"])
    with pytest.raises(ValueError, match="no hook names given"):
        check_hook_names(tiny_model, [])


@pytest.mark.parametrize("layer", [3, 100, -4, -100])
def test_layer_out_of_range_both_signs(tiny_model, layer):
    with pytest.raises(ValueError, match=rf"layer {layer} is out of range.*3 layers.*0\.\.2"):
        resolve_hook_names(tiny_model, layers=[layer])


def test_layers_resolve_to_validated_hook_names(tiny_model):
    assert resolve_hook_names(tiny_model, layers=[-1, -3]) == [
        "blocks.2.hook_resid_post",
        "blocks.0.hook_resid_post",
    ]
    assert resolve_hook_names(tiny_model, layers=1, site="mlp_post") == ["blocks.1.mlp.hook_post"]
    # No layers: one third of the way through (3 // 3 = 1).
    assert resolve_hook_names(tiny_model) == ["blocks.1.hook_resid_post"]
    given = ["blocks.2.hook_attn_out", "blocks.0.hook_resid_pre"]
    assert resolve_hook_names(tiny_model, hook_names=given) == given
    with pytest.raises(ValueError, match="hook names repeat"):
        resolve_hook_names(tiny_model, layers=[2, -1])
    with pytest.raises(ValueError, match="either layers= or hook_names=, not both"):
        resolve_hook_names(tiny_model, layers=[1], hook_names=given)


def test_model_name_and_site_widths(tiny_model):
    assert model_name(tiny_model) == tiny_model.cfg.model_name
    assert site_width(tiny_model, "blocks.0.hook_resid_post") == 32
    assert site_width(tiny_model, "blocks.2.hook_attn_out") == 32
    assert site_width(tiny_model, "blocks.1.mlp.hook_post") == 64
    assert site_width(tiny_model, "hook_embed") is None


# S8: a TL 4.x bridge keeps several names for one HookPoint; naming both would hook it twice.
ALIAS = "blocks.1.hook_out"


@requires_bridge  # a HookedTransformer has one name per HookPoint
def test_the_tiny_bridge_aliases_resid_post_and_block_out(tiny_model):
    hook_dict = tiny_model.hook_dict
    assert hook_dict["blocks.1.hook_resid_post"] is hook_dict[ALIAS]
    assert hook_dict["blocks.1.hook_resid_post"] is not hook_dict["blocks.2.hook_resid_post"]


@requires_bridge
@pytest.mark.parametrize(
    "names,message",
    [
        (
            ["blocks.1.hook_resid_post", ALIAS],
            r"'blocks\.1\.hook_resid_post' and 'blocks\.1\.hook_out'",
        ),
        (
            [
                "blocks.0.hook_resid_post",
                ALIAS,
                "blocks.2.mlp.hook_post",
                "blocks.1.hook_resid_post",
            ],
            r"hook names 'blocks\.1\.hook_out' and 'blocks\.1\.hook_resid_post' are aliases",
        ),
        (
            [
                ALIAS,
                "blocks.1.hook_resid_post",
                "blocks.2.mlp.out.hook_in",
                "blocks.2.mlp.hook_post",
            ],
            r"'blocks\.1\.hook_out' and 'blocks\.1\.hook_resid_post'; "
            r"'blocks\.2\.mlp\.out\.hook_in' and 'blocks\.2\.mlp\.hook_post' are aliases",
        ),
    ],
)
def test_two_names_of_one_hook_point_are_refused(tiny_model, names, message):
    with pytest.raises(ValueError, match=message + r".*hooked twice; keep one name of each"):
        check_hook_names(tiny_model, names)
    with pytest.raises(ValueError, match=message):
        resolve_hook_names(tiny_model, hook_names=names)


@requires_bridge
def test_distinct_hook_points_pass_and_exact_repeats_are_named(tiny_model):
    names = [ALIAS, "blocks.1.hook_resid_pre", "blocks.1.mlp.hook_post", "blocks.2.hook_out"]
    assert resolve_hook_names(tiny_model, hook_names=names) == names
    with pytest.raises(ValueError, match=r"hook names repeat: \['blocks\.1\.hook_out'\]"):
        check_hook_names(tiny_model, [ALIAS, "blocks.0.hook_out", ALIAS])
