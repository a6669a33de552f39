"""Our corruptions: names, families, severities, input modes, determinism, and the tensor building blocks
checked against the scipy / OpenCV / scikit-image functions they reproduce."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from deem_eval.benchmarks.corruptions import (
    ALL,
    COMMON,
    EXTRA,
    FAMILIES,
    ImageTooSmallError,
    blur,
    catalog,
    corrupt,
    generator,
    ops,
    parse_severities,
    resolve,
    to_rgb_uint8,
)
from deem_eval.benchmarks.corruptions.backends import seeded_generator
from deem_eval.core.errors import DeemEvalError, UnknownNameError
from deem_eval.core.registry import CORRUPTIONS


def photo(height: int = 40, width: int = 52, seed: int = 0) -> np.ndarray:
    """A smooth image with edges and a flat saturated patch (where truncation errors would show)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([128 + 100 * np.sin(xx / 5.0), 128 + 100 * np.cos(yy / 7.0), (xx * 3 + yy * 2) % 256], -1)
    base[: height // 4, : width // 4] = 255
    base += rng.normal(0, 6, base.shape)
    return np.clip(base, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------- names, families, severities
def test_the_19_corruptions_are_registered_in_order_with_families():
    assert len(ALL) == 19 and ALL == COMMON + EXTRA
    assert set(CORRUPTIONS.names()) >= set(ALL)
    assert [n for n in catalog.names() if n in ALL] == list(ALL)
    members = [n for names in FAMILIES.values() for n in names]
    assert sorted(members) == sorted(ALL) and len(members) == len(set(members))
    for name in ALL:
        corruption = CORRUPTIONS.get(name)
        assert corruption is catalog.get(name)
        assert corruption.name == name and name in FAMILIES[corruption.family]
        assert len(corruption.table) == 5


def test_resolve_names_groups_and_did_you_mean():
    assert resolve("all") == ALL
    assert resolve("noise") == ("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise")
    assert resolve("fog, noise,gaussian_noise") == ("gaussian_noise", "shot_noise", "impulse_noise", "fog",
                                                     "speckle_noise")
    assert resolve("common") == COMMON and resolve("extra") == EXTRA
    assert resolve("Glass-Blur") == ("glass_blur",)
    with pytest.raises(UnknownNameError, match="Did you mean 'glass_blur'"):
        resolve("glas_blur")
    with pytest.raises(DeemEvalError):
        resolve(" , ")


def test_parse_severities():
    assert parse_severities("1-5") == (1, 2, 3, 4, 5)
    assert parse_severities("1,3,5") == (1, 3, 5)
    assert parse_severities("4, 2-3,3") == (2, 3, 4)
    for bad in ("0", "6", "1-6", "0-2", "3-1", "x", "", "-1"):
        with pytest.raises(DeemEvalError):
            parse_severities(bad)


@pytest.mark.parametrize("severity", [0, 6, -1, 2.5, True])
def test_severity_out_of_range_is_a_user_error(severity):
    with pytest.raises(DeemEvalError, match="severity"):
        corrupt(photo(), "fog", severity)


def test_unknown_corruption_name():
    with pytest.raises(UnknownNameError, match="Did you mean 'motion_blur'"):
        corrupt(photo(), "motionblur", 1)


# ---------------------------------------------------------------- every corruption x severity
@pytest.mark.parametrize("name", ALL)
def test_every_corruption_every_severity_is_deterministic_and_changes_the_image(name):
    image = photo()
    corruption = catalog.get(name)
    last = None
    for severity in range(1, 6):
        out = corruption(image, severity, seeded_generator(7))
        assert out.shape == image.shape and out.dtype == np.uint8
        again = corruption(image, severity, seeded_generator(7))
        assert np.array_equal(out, again), "same generator state must give the same image"
        assert not np.array_equal(out, image)
        if corruption.stochastic:
            other = corruption(image, severity, seeded_generator(8))
            assert not np.array_equal(out, other), "a stochastic corruption must depend on its generator"
        else:
            assert np.array_equal(out, corruption(image, severity, seeded_generator(99)))
        last = out
    assert last is not None


def test_severity_orders_damage_for_monotone_corruptions():
    image = photo(64, 64)
    for name in ("gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "gaussian_blur", "contrast",
                 "jpeg_compression", "zoom_blur"):
        errors = [np.abs(corrupt(image, name, s, seed=1).astype(int) - image).mean() for s in range(1, 6)]
        assert errors == sorted(errors), (name, errors)


def test_batch_equals_one_by_one_and_keys_separate_images():
    images = np.stack([photo(seed=s) for s in range(3)])
    for name in ("glass_blur", "motion_blur", "fog", "elastic_transform", "frost"):
        corruption = catalog.get(name)
        batch = corruption.batch(images, 3, [seeded_generator(10 + i) for i in range(3)])
        for i in range(3):
            single = corruption.batch(images[i:i + 1], 3, [seeded_generator(10 + i)])[0]
            assert np.array_equal(batch[i], single), name
        tensor = corruption.batch(torch.from_numpy(images), 3, [seeded_generator(10 + i) for i in range(3)])
        assert isinstance(tensor, torch.Tensor) and np.array_equal(tensor.numpy(), batch)


def test_corrupt_derives_draws_from_seed_key_name_severity():
    image = photo()
    a = corrupt(image, "gaussian_noise", 2, seed=3, key="x.jpg")
    assert np.array_equal(a, corrupt(image, "gaussian_noise", 2, seed=3, key="x.jpg"))
    assert not np.array_equal(a, corrupt(image, "gaussian_noise", 2, seed=3, key="y.jpg"))
    assert not np.array_equal(a, corrupt(image, "gaussian_noise", 2, seed=4, key="x.jpg"))
    corruption = catalog.get("gaussian_noise")
    assert np.array_equal(a, corruption(image, 2, generator(3, "x.jpg", "gaussian_noise", 2)))


# ---------------------------------------------------------------- inputs
def test_input_modes_become_rgb_uint8():
    rgb = photo()
    grey = Image.fromarray(rgb).convert("L")
    assert np.array_equal(to_rgb_uint8(grey), np.repeat(np.asarray(grey)[..., None], 3, 2))
    rgba = Image.fromarray(rgb).convert("RGBA")
    assert np.array_equal(to_rgb_uint8(rgba), rgb)
    palette = Image.fromarray(rgb).convert("P")
    assert np.array_equal(to_rgb_uint8(palette), np.asarray(palette.convert("RGB")))
    sixteen = Image.fromarray(np.asarray(grey).astype(np.uint16) * 257)
    assert sixteen.mode == "I;16"
    assert np.array_equal(to_rgb_uint8(sixteen)[..., 0], np.asarray(grey))          # scaled, not clipped
    assert np.array_equal(to_rgb_uint8(np.asarray(grey)), to_rgb_uint8(grey))
    assert np.array_equal(to_rgb_uint8(rgb.astype(np.float32) / 255), rgb)
    assert np.array_equal(to_rgb_uint8(np.dstack([rgb, np.full(rgb.shape[:2], 7, np.uint8)])), rgb)
    for mode_image in (grey, rgba, palette, sixteen):
        out = corrupt(mode_image, "contrast", 2)
        assert out.shape == (*rgb.shape[:2], 3) and out.dtype == np.uint8


def test_images_smaller_than_32_pixels_are_refused_with_the_minimum():
    with pytest.raises(ImageTooSmallError, match=r"31x40 .*at least 32x32"):
        corrupt(np.zeros((40, 31, 3), np.uint8), "snow", 1)
    assert corrupt(np.zeros((32, 32, 3), np.uint8), "snow", 1).shape == (32, 32, 3)


@settings(max_examples=12, deadline=None)
@given(height=st.integers(32, 70), width=st.integers(32, 70), severity=st.integers(1, 5),
       name=st.sampled_from(["glass_blur", "motion_blur", "zoom_blur", "snow", "fog", "frost", "elastic_transform",
                             "spatter", "defocus_blur", "pixelate"]))
def test_any_size_keeps_its_shape(height, width, severity, name):
    image = photo(height, width)
    out = corrupt(image, name, severity, seed=height * width)
    assert out.shape == (height, width, 3) and out.dtype == np.uint8


def test_missing_frost_photos_give_a_clear_error(tmp_path, monkeypatch):
    from deem_eval.benchmarks.corruptions import weather

    monkeypatch.setenv("DEEM_EVAL_FROST_DIR", str(tmp_path))
    weather.frost_photo.cache_clear()
    weather.frost_overlay.cache_clear()
    try:
        with pytest.raises(DeemEvalError, match="frost photo missing"):
            corrupt(photo(), "frost", 1)
    finally:
        weather.frost_photo.cache_clear()
        weather.frost_overlay.cache_clear()


# ---------------------------------------------------------------- building blocks vs the libraries
@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 9), before=st.integers(0, 30), after=st.integers(0, 30),
       mode=st.sampled_from([("nearest", "edge"), ("symmetric", "symmetric"), ("reflect101", "reflect")]))
def test_pad_index_matches_numpy_pad(n, before, after, mode):
    ours, numpy_mode = mode
    if numpy_mode == "reflect" and n == 1:
        numpy_mode = "edge"
    values = np.arange(n) * 10
    assert np.array_equal(values[ops.pad_index(n, before, after, ours)], np.pad(values, (before, after), numpy_mode))


@pytest.mark.parametrize("shape", [(37, 45), (60, 400)])   # dense and banded paths
@pytest.mark.parametrize("mode,scipy_mode", [("nearest", "nearest"), ("symmetric", "reflect"),
                                             ("reflect101", "mirror")])
def test_gaussian_filter_matches_scipy(shape, mode, scipy_mode):
    from scipy.ndimage import gaussian_filter

    image = np.random.default_rng(0).random(shape)
    for sigma, truncate in ((0.7, 4.0), ((2.5, 1.2), 3.0), (9.0, 4.0)):
        ours = ops.gaussian_filter(torch.from_numpy(image)[None], sigma, mode=mode, truncate=truncate)[0]
        ref = gaussian_filter(image, sigma, mode=scipy_mode, truncate=truncate)
        np.testing.assert_allclose(ours.numpy(), ref, rtol=0, atol=1e-13)


def test_filter2d_and_disk_match_opencv():
    import cv2

    image = np.random.default_rng(1).random((41, 57))
    for radius, alias in blur.DEFOCUS_BLUR_TABLE:
        half, ksize = (8, 3) if radius <= 8 else (radius, 5)
        coords = np.arange(-half, half + 1)
        xx, yy = np.meshgrid(coords, coords)
        disk = ((xx ** 2 + yy ** 2) <= radius ** 2).astype(np.float32)
        disk /= disk.sum()
        cv_disk = cv2.GaussianBlur(disk, (ksize, ksize), alias)
        np.testing.assert_allclose(blur.disk_kernel(radius, alias), cv_disk, atol=1e-7)
        ours = ops.filter2d(torch.from_numpy(image), blur.disk_kernel(radius, alias)).numpy()
        np.testing.assert_allclose(ours, cv2.filter2D(image, -1, cv_disk), atol=1e-6)


def test_bilinear_symmetric_matches_map_coordinates():
    from scipy.ndimage import map_coordinates

    rng = np.random.default_rng(2)
    image = rng.random((2, 13, 17))
    ys = rng.uniform(-30, 45, (13, 17))
    xs = rng.uniform(-30, 45, (13, 17))
    ours = ops.bilinear_symmetric(torch.from_numpy(image)[None], torch.from_numpy(ys)[None],
                                  torch.from_numpy(xs)[None])[0].numpy()
    for c in range(2):
        ref = map_coordinates(image[c], [ys, xs], order=1, mode="reflect")
        np.testing.assert_allclose(ours[c], ref, atol=1e-12)


def test_zoom_center_matches_scipy_zoom():
    from scipy.ndimage import zoom

    image = np.random.default_rng(3).random((3, 50, 61))
    for factor in (1.0, 1.07, 1.3, 2.5):
        ch, cw = int(np.ceil(50 / factor)), int(np.ceil(61 / factor))
        top, left = (50 - ch) // 2, (61 - cw) // 2
        ref = zoom(image[:, top:top + ch, left:left + cw], (1, factor, factor), order=1)
        ours = ops.zoom_center(torch.from_numpy(image)[None], factor)[0].numpy()
        assert ours.shape == ref.shape
        np.testing.assert_allclose(ours, ref, atol=1e-12)


def test_hsv_matches_skimage():
    from skimage.color import hsv2rgb, rgb2hsv

    rgb = photo(33, 35) / 255.0
    rgb[0, :3] = [[0.2, 0.2, 0.2], [0, 0, 0], [0.5, 0.5, 0.1]]   # grey, black, ties
    hsv = ops.rgb_to_hsv(torch.from_numpy(rgb).permute(2, 0, 1)[None])
    np.testing.assert_array_equal(hsv[0].permute(1, 2, 0).numpy(), rgb2hsv(rgb))
    back = ops.hsv_to_rgb(hsv)[0].permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(back, hsv2rgb(rgb2hsv(rgb)))


def test_glass_schedule_is_the_sequential_loop():
    """The vectorised wavefront must equal the reference's pixel loop (each visit copies the neighbour)."""
    height, width = 23, 29
    for params in blur.GLASS_BLUR_TABLE:
        d = params.max_delta
        rng = np.random.default_rng(5)
        shifts = rng.integers(-d, d, size=(params.iterations, max(height - 2 * d, 0), max(width - 2 * d, 0), 2))
        index = np.arange(height * width).reshape(height, width)
        for it in range(params.iterations):
            for i, h in enumerate(range(height - d, d, -1)):
                for j, w in enumerate(range(width - d, d, -1)):
                    dx, dy = shifts[it, i, j]
                    index[h, w] = index[h + dy, w + dx]
        ours = blur.glass_sources(height, width, params, [np.random.default_rng(5)])
        assert np.array_equal(ours, index.ravel()), params
