"""The fast CPU paths (`cpu_fn`: numpy HWC, float32 / OpenCV / PIL without torch) and the GPU-path FFT
sizes: they must still give imagecorruptions 1.1.2's pixels, and those of zoom_blur, elastic_transform, fog
and frost must be the torch path's (`fn`, what a GPU runs) byte for byte. Parity only; speed is
tests/perf/corruptions_speed.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deem_eval.benchmarks.corruptions import blur, catalog, compat, digital, ops
from deem_eval.benchmarks.corruptions.parity import sample_images
from deem_eval.benchmarks.corruptions.spec import to_uint8

FAST = ("defocus_blur", "gaussian_blur", "pixelate", "jpeg_compression", "zoom_blur", "elastic_transform", "fog",
        "frost")
# CPU paths that repeat the torch path's float64 arithmetic in its order (frost: tabulated for every pair of
# grey levels): the same bytes, not only close.
EXACT = ("zoom_blur", "elastic_transform", "fog", "frost")
# Worst |ours - reference| allowed per corruption (grey levels): gaussian blur's float32 samples near an integer
# are recomputed in scipy's order (exact); PIL / libjpeg are the reference's own code; defocus is float64
# OpenCV, as the reference, but all channels at once on a trimmed kernel (float rounding at truncation). Zoom
# blur and elastic_transform (0 measured) filter in another order than scipy; fog and frost are the reference's
# arithmetic.
MAX_DIFF = {"defocus_blur": 1, "gaussian_blur": 0, "pixelate": 0, "jpeg_compression": 0, "zoom_blur": 1,
            "elastic_transform": 1, "fog": 0, "frost": 0}


def flat_scene(height: int, width: int) -> np.ndarray:
    """Flat colour regions, saturated patches, a linear ramp and hard edges: where float rounding at the
    reference's truncation to uint8 shows (a flat region of value v may come out as v - 1)."""
    yy, xx = np.mgrid[0:height, 0:width]
    image = np.zeros((height, width, 3), np.uint8)
    image[...] = (37, 200, 91)
    image[: height // 3, : width // 2] = 255
    image[height // 2:, width // 3:] = (0, 128, 254)
    image[:, -width // 5:, 0] = (xx[:, -width // 5:] * 7 % 256).astype(np.uint8)
    image[height // 4: height // 4 + 3] = (12, 12, 12)
    image[(yy - height / 2) ** 2 + (xx - width / 2) ** 2 < (min(height, width) / 5) ** 2] = (250, 5, 128)
    return image


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    photos = sample_images(48, ("astronaut", "coffee"))
    rng = np.random.default_rng(3)
    odd = np.ascontiguousarray(sample_images(64, ("chelsea",))[0][:37, :53])
    noise = rng.integers(0, 256, (40, 45, 3)).astype(np.uint8)
    return [*photos, odd, flat_scene(50, 70), noise]


def _check(ours: np.ndarray, reference: np.ndarray, max_diff: int, what: str, mad: float = 0.01) -> None:
    diff = np.abs(ours.astype(np.int16) - reference.astype(np.int16))
    assert ours.shape == reference.shape and ours.dtype == np.uint8, what
    assert diff.max() <= max_diff and diff.mean() <= mad, (what, diff.max(), diff.mean())


@pytest.mark.parametrize("name", FAST)
def test_cpu_path_gives_the_reference_pixels(name, images):
    corruption = catalog.get(name)
    assert corruption.cpu_fn is not None
    for index, image in enumerate(images):
        for severity in range(1, 6):
            reference = compat.reference_corrupt(image, name, severity, 0)
            ours = corruption.batch(image[None], severity, [compat.ReplayRng(0)])[0]
            assert ours.flags.writeable
            _check(ours, reference, MAX_DIFF[name], f"{name} s{severity} image {index}")


@pytest.mark.parametrize("name", FAST)
def test_torch_path_still_gives_the_reference_pixels(name, images):
    """What a GPU runs (`fn` on CHW tensors), run here on the CPU: float64 in another summation order, so a
    sample may be one grey level off where the exact value is an integer (the parity tests' bound)."""
    corruption = catalog.get(name)
    for index, image in enumerate(images):
        for severity in range(1, 6):
            reference = compat.reference_corrupt(image, name, severity, 0)
            chw = torch.from_numpy(image).permute(2, 0, 1)[None].contiguous()
            out = to_uint8(corruption.fn(chw, [compat.ReplayRng(0)], corruption.params(severity)))
            ours = out[0].permute(1, 2, 0).numpy()
            # On the flat scene (image 3) the banded float64 product of the torch Gaussian lands flat
            # regions on the other side of an integer for up to ~4 % of samples (unchanged by the CPU work).
            _check(ours, reference, 1, f"{name} torch path s{severity} image {index}", 0.05 if index == 3 else 0.01)


@pytest.mark.parametrize("name", FAST)
def test_cpu_batches_tensors_and_numpy_agree(name, images):
    corruption = catalog.get(name)
    batch = np.stack([image[:37, :45] for image in images])

    def rngs() -> list[np.random.Generator]:    # fresh each call: the stochastic corruptions consume them
        return [np.random.default_rng(i) for i in range(len(batch))]

    together = corruption.batch(batch, 3, rngs())
    one_by_one = np.stack([corruption.batch(image[None], 3, [rng])[0] for image, rng in zip(batch, rngs())])
    as_tensor = corruption.batch(torch.from_numpy(batch), 3, rngs())
    assert isinstance(together, np.ndarray) and together.shape == batch.shape
    assert isinstance(as_tensor, torch.Tensor) and np.array_equal(as_tensor.numpy(), together)
    assert np.array_equal(together, one_by_one)


@pytest.mark.parametrize("name", EXACT)
def test_cpu_path_is_the_torch_path_byte_for_byte(name, images):
    """The CPU path against `fn` on CHW tensors, from our generators and from replayed legacy streams, on
    the test images and on larger ones whose fog map (a power of two) is cropped in both directions."""
    corruption = catalog.get(name)
    photo = sample_images(160, ("chelsea",))[0]
    larger = [np.ascontiguousarray(photo[:70, :130]), np.ascontiguousarray(photo[:131, :67])]
    for index, image in enumerate([*images, *larger]):
        chw = torch.from_numpy(image).permute(2, 0, 1)[None].contiguous()
        for severity in range(1, 6):
            for make in (np.random.default_rng, compat.ReplayRng):
                ours = corruption.batch(image[None], severity, [make(index)])[0]
                torch_path = to_uint8(corruption.fn(chw, [make(index)], corruption.params(severity)))
                assert np.array_equal(ours, torch_path[0].permute(1, 2, 0).numpy()), (name, severity, index, make)


def test_outputs_do_not_alias_the_scratch_buffers(images):
    for name in ("defocus_blur", "gaussian_blur", "zoom_blur", "elastic_transform", "fog", "frost"):
        corruption = catalog.get(name)
        first = corruption.batch(images[0][None], 2, [np.random.default_rng(0)])
        kept = first.copy()
        corruption.batch(images[1][None], 2, [np.random.default_rng(0)])
        assert np.array_equal(first, kept), name


def test_exact_gaussian_samples_are_scipys_bit_for_bit():
    from scipy.ndimage import gaussian_filter

    image = flat_scene(31, 44)
    image[5:9, 30:40] = np.random.default_rng(0).integers(0, 256, (4, 10, 3))
    every = np.arange(image.size)
    for sigma in blur.GAUSSIAN_BLUR_SIGMA:
        kernel, _ = blur._gaussian_kernels(float(sigma))
        reference = gaussian_filter(image / 255.0, (sigma, sigma, 0), mode="nearest").reshape(-1)
        assert np.array_equal(blur._scipy_gaussian_at(image, every, kernel), reference), sigma


@pytest.mark.parametrize("tolerance, budget", [(0.5, 1e9), (blur.FLOAT32_TOLERANCE, 0.0)])
def test_gaussian_blur_recompute_and_fallback_paths(monkeypatch, images, tolerance, budget):
    """Every sample recomputed exactly (tolerance 0.5), or the whole image through scipy (budget 0)."""
    monkeypatch.setattr(blur, "FLOAT32_TOLERANCE", tolerance)
    monkeypatch.setattr(blur, "_RECOMPUTE_BUDGET", budget)
    for image in images[2:4]:
        for severity in (1, 5):
            reference = compat.reference_corrupt(image, "gaussian_blur", severity, 0)
            ours = blur.gaussian_blur_cpu(image, None, blur.GAUSSIAN_BLUR_SIGMA[severity - 1])
            assert np.array_equal(ours, reference), (tolerance, budget, severity)


def test_pixelate_nearest_upscale_is_pils_at_many_sizes():
    from PIL import Image

    rng = np.random.default_rng(5)
    for height, width in ((32, 32), (33, 47), (61, 40), (224, 224), (96, 128)):
        image = rng.integers(0, 256, (height, width, 3)).astype(np.uint8)
        for scale in digital.PIXELATE_SCALE:
            expected = np.asarray(digital._pixelate_pil(Image.fromarray(image), scale))
            assert np.array_equal(digital.pixelate_cpu(image, None, scale), expected), (height, width, scale)


def test_jpeg_falls_back_to_pil_where_opencv_differs(monkeypatch, images):
    monkeypatch.setattr(digital, "_opencv_jpeg_matches_pil", lambda quality: False)
    for severity in (1, 5):
        reference = compat.reference_corrupt(images[2], "jpeg_compression", severity, 0)
        ours = digital.jpeg_compression_cpu(images[2], None, digital.JPEG_QUALITY[severity - 1])
        assert np.array_equal(ours, reference)


def test_fft_sizes_are_5_smooth_and_large_enough():
    for n in (1, 7, 41, 240, 496, 656, 1000, 1031):
        size = ops.fft_size(n)
        assert size >= n and size < 2 * n + 2
        rest = size
        for factor in (2, 3, 5):
            while rest % factor == 0:
                rest //= factor
        assert rest == 1, (n, size)
    assert ops.fft_size(656) != 656


def test_filter2d_at_awkward_fft_sizes_matches_opencv():
    import cv2

    image = np.random.default_rng(2).random((2, 25, 41))       # padded 41 x 57 (prime-ish) under 17 x 17
    kernel = blur.disk_kernel(8, 0.5)
    ours = ops.filter2d(torch.from_numpy(image), kernel).numpy()
    for plane, got in zip(image, ours):
        np.testing.assert_allclose(got, cv2.filter2D(plane, -1, kernel.astype(np.float32)), atol=1e-12)


def test_cpu_batches_run_on_one_thread_and_restore_the_count():
    """Corrupting on the CPU pins torch to one thread while it computes (shared cores only spin-wait with
    more) and gives the caller's thread count back afterwards."""
    import numpy as np
    import torch

    from deem_eval.benchmarks.corruptions import catalog
    from deem_eval.core.rng import derive_rng

    seen = []
    corruption = catalog.get("contrast")
    original = corruption.fn

    def spy(x, rngs, params):
        seen.append(torch.get_num_threads())
        return original(x, rngs, params)

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        object.__setattr__(corruption, "fn", spy)
        out = corruption.batch(np.full((1, 32, 32, 3), 120, np.uint8), 3, [derive_rng(0, "t", 0)])
        assert out.shape == (1, 32, 32, 3) and seen == [1] and torch.get_num_threads() == 2
    finally:
        object.__setattr__(corruption, "fn", original)
        torch.set_num_threads(before)
