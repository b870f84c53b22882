"""The image stages through Python (plan, pixels, vision_features, pyramid, embed_image) against
the upstream golden cases (Tests/Fixtures/upstream: the original PyTorch code on each case's tiny
model, float32), with the fixture README's tolerances, and the stages' error paths."""
import ctypes

import numpy as np
import pytest
from conftest import CASES, UPSTREAM, manifest, npy, relative_error, slicing

import llavauhd
from llavauhd import _lib
from llavauhd._lib import SliceParams, SlicePlan, TensorList, lib

CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)


def image(case):
    return llavauhd.Image.open(UPSTREAM / case / "input.png")


def views_of(case, name):
    """A per-view fixture: the slices (if any) then the overview."""
    sliced = manifest(case)["preprocess"]["num_slices"] > 0
    over = npy(case, f"{name}_overview")
    return ([*npy(case, f"{name}_slices")] if sliced else []) + [over]


@pytest.mark.parametrize("case", CASES)
def test_plan_matches_upstream(case, load_model):
    model, m = load_model(case), manifest(case)
    pre, layout = m["preprocess"], m["layout"]
    img = image(case)
    plan = model.plan(img, **slicing(case))
    assert plan.image_size == img.size
    assert plan.resized_size == tuple(pre["preresized_size_wh"])
    assert plan.grid == (tuple(pre["grid_cols_rows"]) if pre["grid_cols_rows"] else None)
    assert plan.slice_size == (tuple(pre["slice_size_wh"]) if pre["slice_size_wh"] else None)
    assert plan.overview_size == tuple(pre["overview_size_wh"])
    assert plan.views == pre["num_slices"] + 1 == len(pre["view_patch_grids_hw"])
    assert list(plan.separators) == pre["ind_tokens"]
    assert plan.n_image_tokens == layout["image_positions"]
    if plan.grid:
        cols, rows = plan.grid
        sw, sh = plan.slice_size
        assert plan.refine_size == (cols * sw, rows * sh)
    if model.info.token_layout == "stitched_grid" and plan.grid:
        # The stitched layout puts one separator before the overview: the last entry of
        # layout.separator_ids (13 after a single column, the upstream quirk).
        assert plan.overview_separator == layout["separator_ids"][-1]
    else:
        assert plan.overview_separator is None


@pytest.mark.parametrize("case", CASES)
def test_pixels_are_the_normalised_upstream_views(case, load_model):
    views = load_model(case).pixels(image(case), **slicing(case))
    rgb = views_of(case, "rgb")
    assert len(views) == len(rgb)
    for got, ref in zip(views, rgb):
        want = ((ref.astype(np.float32) / np.float32(255) - CLIP_MEAN) / CLIP_STD).transpose(2, 0, 1)
        assert got.dtype == np.float32 and got.shape == want.shape
        assert float(np.max(np.abs(got - want))) <= 1e-6


@pytest.mark.parametrize("case", CASES)
def test_vision_features_match_upstream(case, load_model):
    m = manifest(case)
    feats = load_model(case).vision_features(image(case), **slicing(case))
    grids = m["preprocess"]["view_patch_grids_hw"]
    assert [f.shape for f in feats] == [(h * w, 1024) for h, w in grids]
    over = npy(case, "vit_overview")
    err = relative_error(feats[-1], over.reshape(-1, over.shape[-1]))
    print(f"{case}: vit_overview error {err:.2e}")
    assert err <= 1e-4
    if m["preprocess"]["num_slices"]:
        idx, sub, f16 = npy(case, "vit_slices_idx"), npy(case, "vit_slices_sub"), npy(case, "vit_slices_f16")
        for i, f in enumerate(feats[:-1]):
            assert relative_error(f[idx], sub[i]) <= 1e-4
            assert relative_error(f, f16[i].reshape(f.shape).astype(np.float32)) <= 1e-3


@pytest.mark.parametrize("case", CASES)
def test_embed_image_matches_upstream_projector(case, load_model):
    model = load_model(case)
    emb = model.embed_image(image(case), **slicing(case))
    ref = np.stack(views_of(case, "hiwin"))
    assert emb.dtype == np.float32 and emb.shape == ref.shape == (len(ref), 144, model.info.hidden_size)
    errors = [relative_error(e, r) for e, r in zip(emb, ref)]
    print(f"{case}: projector error per view {max(errors):.2e}")
    assert max(errors) <= 1e-4


@pytest.mark.parametrize("case", ["small-noslice", "chelsea-qwen2-mask5", "rocket-v1"])
def test_pyramid_matches_upstream(case, load_model):
    model, m = load_model(case), manifest(case)
    img = image(case)
    pyramid = model.pyramid(img, **slicing(case))
    levels = model.pyramid_levels()
    feats = model.vision_features(img, **slicing(case))
    grids = m["preprocess"]["view_patch_grids_hw"]
    assert len(pyramid) == len(grids)
    if case == "rocket-v1":
        assert levels == [(1, True)]
    else:
        mask = m["model"]["config"]["feature_scale_mask"]
        assert levels == [(1, True), (2, bool(mask & 2)), (4, bool(mask & 4))]
    sliced = m["preprocess"]["num_slices"] > 0
    for v, (view, (h, w)) in enumerate(zip(pyramid, grids)):
        assert len(view) == len(levels)
        # Level 1 is the CLIP feature map, channels first.
        assert view[0].shape == (1024, h, w)
        np.testing.assert_array_equal(view[0], feats[v].reshape(h, w, 1024).transpose(2, 0, 1))
        is_overview = v == len(grids) - 1
        for (scale, _), level in zip(levels[1:], view[1:]):
            assert level.shape == (1024, h * scale, w * scale)
            part = "overview" if is_overview else "slices"
            idx = npy(case, f"pyr{scale}x_{part}_idx")
            sub, mean = npy(case, f"pyr{scale}x_{part}_sub"), npy(case, f"pyr{scale}x_{part}_chmean")
            if not is_overview:
                sub, mean = sub[v], mean[v]
            flat = level.reshape(1024, -1).T
            assert relative_error(flat[idx], sub) <= 1e-4, (case, v, scale)
            assert relative_error(flat.mean(axis=0), mean) <= 1e-4, (case, v, scale)
    assert sliced == (len(grids) > 1)


def test_slicing_options_change_the_plan(small, small_image):
    # Upstream's pre-resize (default 1024) upscales the 200x150 image and slices it.
    default = small.plan(small_image)
    assert default.resized_size == (1024, 768) and default.grid is not None
    off = small.plan(small_image, preresize_long_side=0)
    assert off.grid is None and off.views == 1 and off.n_image_tokens == 144
    one = small.plan(small_image, max_slices=1)
    assert one.views <= default.views


def test_stage_errors(small, small_image):
    for bad in ({"max_slices": 0}, {"max_slices": llavauhd.MAX_SLICES + 1}, {"preresize_long_side": -1}):
        with pytest.raises(llavauhd.InvalidArgumentError):
            small.plan(small_image, **bad)
        with pytest.raises(llavauhd.InvalidArgumentError):
            small.pixels(small_image, **bad)
    closed = llavauhd.Image.from_array(np.zeros((4, 4, 3), np.uint8))
    closed.close()
    with pytest.raises(ValueError):
        small.embed_image(closed)


@pytest.mark.parametrize("stage", ["pixels", "vision_features", "pyramid", "embed_image"])
def test_abort_callback_cancels_each_stage(stage, small, small_image):
    calls = []

    def abort():
        calls.append(1)
        return True
    with pytest.raises(llavauhd.CancelledError):
        getattr(small, stage)(small_image, preresize_long_side=0, abort=abort)
    assert calls
    # An abort callback that raises stops the work too, and its exception comes out.
    def broken():
        raise KeyError("from the abort callback")
    with pytest.raises(KeyError, match="from the abort callback"):
        getattr(small, stage)(small_image, preresize_long_side=0, abort=broken)


def test_abort_after_some_polls_stops_inside_the_encoder(small, small_image):
    """The callback is polled inside the work (not just once before it): stopping at its
    third poll still cancels, and a callback that never stops lets the work finish."""
    polls = []

    def abort_third():
        polls.append(1)
        return len(polls) >= 3
    with pytest.raises(llavauhd.CancelledError):
        small.embed_image(small_image, preresize_long_side=0, abort=abort_third)
    assert len(polls) == 3
    count = []
    small.embed_image(small_image, preresize_long_side=0, abort=lambda: count.append(1) and False)
    assert len(count) > 3


def test_raw_stage_calls(small, small_image):
    """The C entry points directly: NULL arguments, wrong struct_size, freeing NULL."""
    out = ctypes.POINTER(TensorList)()
    for fn in (lib.luhd_image_pixels, lib.luhd_image_features, lib.luhd_image_pyramid, lib.luhd_image_embed):
        no_abort = _lib.ABORT_CALLBACK()
        assert fn(None, small_image._handle, None, no_abort, None, ctypes.byref(out)) == 1
        assert fn(small._handle, None, None, no_abort, None, ctypes.byref(out)) == 1
        assert fn(small._handle, small_image._handle, None, no_abort, None, None) == 1
        bad = SliceParams()
        bad.struct_size = 0
        assert fn(small._handle, small_image._handle, ctypes.byref(bad), no_abort, None, ctypes.byref(out)) == 1
        assert b"struct_size" in lib.luhd_last_error()
    assert not out
    lib.luhd_tensor_list_free(None)
    plan = SlicePlan()
    # struct_size 0:
    assert lib.luhd_image_get_slice_plan(small._handle, small_image._handle, None, ctypes.byref(plan)) == 1
    plan.struct_size = ctypes.sizeof(SlicePlan)
    assert lib.luhd_image_get_slice_plan(small._handle, small_image._handle, None, ctypes.byref(plan)) == 0
    assert plan.n_views >= 1
    assert lib.luhd_image_get_slice_plan(small._handle, small_image._handle, None, None) == 1
    # An older caller's shorter struct: only its fields are written.
    short = SlicePlan()
    short.struct_size = SlicePlan.n_views.offset
    short.n_views = -7
    assert lib.luhd_image_get_slice_plan(small._handle, small_image._handle, None, ctypes.byref(short)) == 0
    assert short.overview_height > 0 and short.n_views == -7
