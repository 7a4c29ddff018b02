"""Segmenter behaviour on the CPU: output sizes and types, colours and overlay on a hand-made
image, confidence, checkpoints and class maps, buffers, threads, and the CUDA path's device work."""

from __future__ import annotations

import logging
import sys
import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ddrnet_ros.classes import ClassMap, ClassMapError
from ddrnet_ros.engine import SegmentationResult, Segmenter, SegmenterConfig
from ddrnet_ros.engine.backends.torch_backend import TorchModel, batch_outputs
from ddrnet_ros.engine.preprocess import IMAGENET_MEAN, IMAGENET_STD
from ddrnet_ros.engine.requests import FrameRequest
from ddrnet_ros.model import CheckpointError, create_model, save_checkpoint, sha256_of
from ddrnet_ros.model.folding import fold_batchnorm

# ----------------------------------------------------------------------------- a hand-made case
#: class 0 is predicted for red, 1 for green, 2 for blue; each is painted in another colour.
RGB_CLASSES = ClassMap(names=("red", "green", "blue"), colors=np.array([[0, 0, 255], [255, 0, 0], [0, 255, 0]]))


class ColourProbe(nn.Module):
    """Logits of each 8x8 cell = 10 x its mean (R, G, B) in 0..1: the dominant colour wins."""

    num_classes = 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        return F.avg_pool2d((x * std + mean) * 10.0, 8)


def stripes() -> np.ndarray:
    """16 x 48 RGB: red, green, blue vertical stripes of 16 columns, each two 8x8 cells wide."""
    image = np.zeros((16, 48, 3), np.uint8)
    for stripe in range(3):
        image[:, 16 * stripe:16 * (stripe + 1), stripe] = 200
    return image


def probe_segmenter(**config) -> Segmenter:
    return Segmenter(SegmenterConfig(checkpoint="random", class_map=RGB_CLASSES, device="cpu", **config),
                     model=ColourProbe())


@pytest.mark.parametrize("fast", [True, False])
def test_labels_colour_mask_and_overlay_of_hand_made_stripes(fast):
    seg = Segmenter(SegmenterConfig(checkpoint="random", class_map=RGB_CLASSES, device="cpu"), model=ColourProbe(),
                    optimize=fast)
    result = seg.segment(stripes(), want_color=True, want_overlay=True, overlay_alpha=0.25)
    # Stripe edges sit between cells, half-way between two cell centres: labels switch exactly there.
    expected_labels = np.repeat(np.array([0, 1, 2], np.uint8), 16)[None, :].repeat(16, axis=0)
    np.testing.assert_array_equal(result.labels, expected_labels)
    red, green, blue = (0, 0, 255), (255, 0, 0), (0, 255, 0)  # the class colours of stripes 0, 1, 2
    np.testing.assert_array_equal(result.color[:, :16], np.broadcast_to(red, (16, 16, 3)))
    np.testing.assert_array_equal(result.color[:, 16:32], np.broadcast_to(green, (16, 16, 3)))
    np.testing.assert_array_equal(result.color[:, 32:], np.broadcast_to(blue, (16, 16, 3)))
    # 0.75 x image + 0.25 x class colour, rounded: (200,0,0)+(0,0,255) -> (150, 0, 64) ...
    np.testing.assert_array_equal(result.overlay[:, :16], np.broadcast_to((150, 0, 64), (16, 16, 3)))
    np.testing.assert_array_equal(result.overlay[:, 16:32], np.broadcast_to((64, 150, 0), (16, 16, 3)))
    np.testing.assert_array_equal(result.overlay[:, 32:], np.broadcast_to((0, 64, 150), (16, 16, 3)))
    assert result.confidence is None


def test_low_confidence_pixels_become_ignore_and_keep_the_image_in_the_overlay():
    seg = probe_segmenter()
    image = stripes()
    result = seg.segment(image, want_color=True, want_overlay=True, want_confidence=True,
                         overlay_alpha=0.25, confidence_threshold=0.99)
    # Columns 14..17 and 30..33 mix the two neighbouring cells enough for max softmax < 0.99
    # (column 14: logits 0.6875 x 7.84 vs 0.3125 x 7.84 -> 0.946); columns 13 and 18 keep 0.991.
    # The 16x48 image runs in a 64x64 frame: its last 4 rows and columns also mix with the padding
    # cells beyond it, so the stripes are checked away from there (rows 0..11, columns 0..43).
    ignored = [14, 15, 16, 17, 30, 31, 32, 33]
    inner = result.labels[:12, :44]
    assert sorted(set(np.nonzero(inner == 255)[1].tolist())) == ignored
    assert (result.confidence[:12, ignored] < 0.99 * 255).all()
    assert (result.confidence[:12, [0, 8, 13, 18, 24, 29, 34, 43]] >= 0.99 * 255).all()
    np.testing.assert_array_equal(result.color[:, ignored], 0)            # ignored pixels are black
    np.testing.assert_array_equal(result.overlay[:, ignored], image[:, ignored])  # and keep the image
    assert result.labels[0, 13] == 0 and result.labels[0, 18] == 1
    np.testing.assert_array_equal(result.confidence[:12, 0], 255)  # pure red cell: softmax ~ 0.9992


def test_bgr_input_gives_the_same_labels_and_an_rgb_overlay():
    seg = probe_segmenter()
    rgb = seg.segment(stripes(), want_overlay=True)
    bgr = seg.segment(stripes()[:, :, ::-1].copy(), channel_order="bgr", want_overlay=True)
    np.testing.assert_array_equal(bgr.labels, rgb.labels)
    np.testing.assert_array_equal(bgr.overlay, rgb.overlay)


# ----------------------------------------------------------------------------- real DDRNet
@pytest.fixture(scope="module")
def ddrnet(trained_like_model) -> nn.Module:
    return trained_like_model(affine=True)  # BN scales and shifts too: folding must carry them


def noise(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.mark.parametrize("input_size", [None, (64, 96)])
def test_outputs_have_the_input_size_and_uint8_type(ddrnet, input_size):
    seg = Segmenter(SegmenterConfig(checkpoint="random", input_size=input_size, device="cpu"), model=ddrnet)
    result = seg.segment(noise(61, 203), want_color=True, want_overlay=True, want_confidence=True)
    assert isinstance(result, SegmentationResult)
    assert result.labels.shape == (61, 203) and result.labels.dtype == np.uint8
    assert result.color.shape == result.overlay.shape == (61, 203, 3)
    assert result.confidence.shape == (61, 203)
    assert result.color.dtype == result.overlay.dtype == result.confidence.dtype == np.uint8
    assert result.labels.max() < 19 and result.inference_ms > 0
    # 61x203 fits 64x96 at 29x96: the frame is trimmed to 29 rows, then rounded up to multiples of 64
    assert seg.network_size(61, 203) == ((64, 128) if input_size else (64, 256))
    plain = seg.segment(noise(61, 203))
    assert plain.color is None and plain.overlay is None and plain.confidence is None
    np.testing.assert_array_equal(plain.labels, result.labels)


def test_folded_batchnorm_copy_computes_the_same_logits(ddrnet):
    folded = fold_batchnorm(ddrnet)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.layer1.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in ddrnet.layer1.modules())  # the original is untouched
    remaining = [name for name, m in folded.named_modules() if isinstance(m, nn.BatchNorm2d)]
    # only the pre-activation BNs (BN -> ReLU -> conv) remain: 11 in DAPPM, the head's input BN
    assert len(remaining) == 12 and all(n.startswith("spp.") for n in remaining[:11])
    assert remaining[11] == "final_layer.bn1"
    x = torch.randn(1, 3, 64, 128)
    with torch.inference_mode():
        reference = ddrnet(x)
        error = (folded(x) - reference).abs().max() / reference.abs().max()
    assert error < 1e-5, error  # float32 rounding only


def test_results_are_fresh_arrays_and_the_input_is_not_kept(ddrnet):
    seg = Segmenter(SegmenterConfig(checkpoint="random", device="cpu"), model=ddrnet)
    image = noise(64, 96)
    refs = sys.getrefcount(image)
    first = seg.segment(image, want_color=True)
    assert sys.getrefcount(image) == refs
    saved = first.labels.copy()
    image[:] = 0  # the caller reuses its buffer
    second = seg.segment(image, want_color=True)
    np.testing.assert_array_equal(first.labels, saved)
    assert not np.shares_memory(first.labels, second.labels)
    assert not np.shares_memory(first.color, second.color)


def test_read_only_and_strided_inputs_are_accepted(ddrnet):
    seg = Segmenter(SegmenterConfig(checkpoint="random", device="cpu"), model=ddrnet)
    big = noise(80, 120)
    reference = seg.segment(np.ascontiguousarray(big[8:72, 4:100])).labels
    view = big[8:72, 4:100]
    view.flags.writeable = False
    np.testing.assert_array_equal(seg.segment(view).labels, reference)


@pytest.mark.parametrize("image, order, message", [
    (np.zeros((8, 8), np.uint8), "rgb", "HxWx3 uint8"),
    (np.zeros((8, 8, 4), np.uint8), "rgb", "HxWx3 uint8"),
    (np.zeros((8, 8, 3), np.float32), "rgb", "HxWx3 uint8"),
    (np.zeros((0, 8, 3), np.uint8), "rgb", "no pixels"),
    ([[1, 2, 3]], "rgb", "numpy array"),
    (np.zeros((8, 8, 3), np.uint8), "rgba", "channel_order"),
])
def test_bad_images_are_one_line_value_errors(image, order, message):
    seg = probe_segmenter()
    with pytest.raises(ValueError, match=message) as info:
        seg.segment(image, channel_order=order)
    assert "\n" not in str(info.value)


def test_bad_alpha_and_threshold_are_value_errors():
    seg = probe_segmenter()
    with pytest.raises(ValueError, match="overlay_alpha"):
        seg.segment(stripes(), overlay_alpha=1.5)
    with pytest.raises(ValueError, match="confidence_threshold"):
        seg.segment(stripes(), confidence_threshold=-0.1)


def test_stream_keys_run_concurrently_and_give_the_sequential_results(ddrnet):
    seg = Segmenter(SegmenterConfig(checkpoint="random", device="cpu"), model=ddrnet)
    images = {"left": noise(64, 96, 1), "right": noise(48, 80, 2)}
    expected = {key: seg.segment(image).labels for key, image in images.items()}
    got: dict[str, list[np.ndarray]] = {key: [] for key in images}

    def worker(key: str) -> None:
        for _ in range(3):
            got[key].append(seg.segment(images[key], stream_key=key).labels)

    threads = [threading.Thread(target=worker, args=(key,)) for key in images]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for key in images:
        assert len(got[key]) == 3
        for labels in got[key]:
            np.testing.assert_array_equal(labels, expected[key])


def test_cuda_device_work_gives_the_cpu_results_when_run_on_cpu_tensors(ddrnet):
    """The CUDA pipeline's per-frame function, on CPU tensors, against the CPU Segmenter."""
    seg = Segmenter(SegmenterConfig(checkpoint="random", input_size=(64, 96), device="cpu"), model=ddrnet,
                    optimize=False)
    image = noise(75, 100, 3)
    plan = seg.frame_plan(75, 100)
    threshold = float(np.median(seg.segment(image, want_confidence=True).confidence)) / 255.0
    expected = seg.segment(image[:, :, ::-1].copy(), channel_order="bgr", want_color=True, want_overlay=True,
                           want_confidence=True, overlay_alpha=0.3, confidence_threshold=threshold)
    model = TorchModel(ddrnet, "cpu", fold_bn=False)  # as the plain (optimize=False) segmenter
    frame = torch.zeros((1, 3, *plan.network))
    lookup = torch.from_numpy(seg.class_map.lookup_table())
    bgr = image[:, :, ::-1].copy()
    request = FrameRequest(bgr, "bgr", want_color=True, want_overlay=True, want_confidence=True)
    out = batch_outputs(model, frame, [torch.from_numpy(bgr)], [plan], [request], lookup, 19, 255,
                        overlay_alpha=0.3, confidence_threshold=threshold)[0]
    assert {name: t.dtype for name, t in out.items()} == dict.fromkeys(["labels", "confidence", "color", "overlay"],
                                                                       torch.uint8)
    np.testing.assert_array_equal(out["labels"].numpy(), expected.labels)
    assert (expected.labels == 255).any()  # the threshold did something
    np.testing.assert_array_equal(out["confidence"].numpy(), expected.confidence)
    np.testing.assert_array_equal(out["color"].numpy(), expected.color)
    np.testing.assert_array_equal(out["overlay"].numpy(), expected.overlay)


# ----------------------------------------------------------------------------- checkpoints and classes
def test_checkpoint_with_sidecar_sets_classes_hash_and_path(tmp_path):
    model = create_model("ddrnet23_slim", num_classes=3)
    path = save_checkpoint(model, tmp_path / "three.pt", metadata={
        "variant": "ddrnet23_slim", "num_classes": 3, "class_names": ["road", "car", "sky"],
        "palette": [[128, 64, 128], [0, 0, 142], [70, 130, 180]], "ignore_label": 255})
    seg = Segmenter(SegmenterConfig(checkpoint=path, device="cpu"))
    assert seg.num_classes == 3 and seg.class_map.names == ("road", "car", "sky")
    assert seg.class_map.colors.tolist()[1] == [0, 0, 142]
    assert seg.checkpoint_path == path and seg.checkpoint_sha256 == sha256_of(path)
    assert seg.variant == "ddrnet23_slim" and seg.device == "cpu"
    assert seg.segment(noise(32, 48)).labels.max() < 3


def test_checkpoint_without_sidecar_takes_its_class_count_from_the_weights(tmp_path):
    path = save_checkpoint(create_model("ddrnet23_slim", num_classes=3), tmp_path / "bare.pt")
    classes = tmp_path / "classes.yaml"
    classes.write_text("classes:\n- {name: a, color: [1, 2, 3]}\n- {name: b, color: [4, 5, 6]}\n"
                       "- {name: c, color: [7, 8, 9]}\n")
    seg = Segmenter(SegmenterConfig(checkpoint=str(path), class_map=str(classes), device="cpu"))
    assert seg.num_classes == 3 and seg.class_map.names == ("a", "b", "c")
    with pytest.raises(ClassMapError, match="lists 19 classes but the model predicts 3"):
        Segmenter(SegmenterConfig(checkpoint=str(path), device="cpu"))  # built-in Cityscapes map does not fit


def test_wrong_variant_checkpoint_fails_with_the_checkpoint_error(tmp_path):
    path = save_checkpoint(create_model("ddrnet23_slim"), tmp_path / "slim.pt")
    with pytest.raises(CheckpointError, match="does not fit ddrnet23 with 19 classes.*looks like ddrnet23_slim"):
        Segmenter(SegmenterConfig(variant="ddrnet23", checkpoint=str(path), device="cpu"))


def test_random_weights_log_a_warning(caplog, monkeypatch):
    # Where the launch stack is installed (make test-full), its pytest plugin imports launch, whose
    # logger class makes loggers created afterwards non-propagating: caplog (on the root) sees nothing.
    monkeypatch.setattr(logging.getLogger("ddrnet_ros.engine.segmenter"), "propagate", True)
    with caplog.at_level("WARNING"):
        seg = Segmenter(SegmenterConfig(checkpoint="random", device="cpu"))
    assert "random weights" in caplog.text
    assert seg.checkpoint_path is None and seg.checkpoint_sha256 is None and seg.num_classes == 19


def test_random_weights_are_the_same_network_whatever_the_random_state():
    """Benchmarks in separate processes must measure one network, and the caller's RNG stays untouched."""
    torch.manual_seed(1)
    first = Segmenter(SegmenterConfig(checkpoint="random", device="cpu")).module.state_dict()
    torch.manual_seed(2)
    state = torch.get_rng_state()
    second = Segmenter(SegmenterConfig(checkpoint="random", device="cpu")).module.state_dict()
    assert torch.equal(torch.get_rng_state(), state)
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert first["final_layer.conv2.weight"].std() > 0  # still random (initialised), not zeros


def test_num_threads_sets_the_torch_thread_count(ddrnet):
    Segmenter(SegmenterConfig(checkpoint="random", num_threads=1, device="cpu"), model=ddrnet)
    assert torch.get_num_threads() == 1  # (test/engine/conftest.py restores it)


@pytest.mark.parametrize("size", [(1, 1), (3, 300), (9, 7)])
def test_tiny_images_give_outputs_of_their_size(ddrnet, size):
    seg = Segmenter(SegmenterConfig(checkpoint="random", device="cpu"), model=ddrnet)
    result = seg.segment(noise(*size), want_confidence=True, want_overlay=True)
    assert result.labels.shape == result.confidence.shape == size and result.overlay.shape == (*size, 3)


def test_the_callers_module_keeps_its_dtype_and_layout(ddrnet):
    before = {k: v.clone() for k, v in ddrnet.state_dict().items()}
    for optimize in (True, False):
        Segmenter(SegmenterConfig(checkpoint="random", precision="bf16", channels_last=True, device="cpu"),
                  model=ddrnet, optimize=optimize)
    after = ddrnet.state_dict()
    assert all(after[k].dtype == v.dtype and torch.equal(after[k], v) for k, v in before.items())
    assert ddrnet.conv1[0].weight.is_contiguous()  # not switched to channels_last


def test_network_runs_at_the_size_the_checkpoint_sidecar_recommends(tmp_path):
    model = create_model("ddrnet23_slim", num_classes=19)
    path = save_checkpoint(model, tmp_path / "small.pt", {"network_input_size": [64, 128]})
    seg = Segmenter(SegmenterConfig(checkpoint=str(path), device="cpu"))
    assert seg.input_size == (64, 128)
    assert seg.network_size(240, 320) == (64, 128)  # 4:3 fits 64x128 as 64x85, in a frame of multiples of 64
    assert seg.network_size(64, 128) == (64, 128)
    assert seg.segment(noise(240, 320)).labels.shape == (240, 320)
    explicit = Segmenter(SegmenterConfig(checkpoint=str(path), input_size=(128, 256), device="cpu"))
    assert explicit.network_size(240, 320) == (128, 192)  # 128x171, rounded up to multiples of 64
    padded = Segmenter(SegmenterConfig(checkpoint=str(path), pad_to_input_size=True, device="cpu"))
    assert padded.network_size(240, 320) == (64, 128)
    assert padded.frame_plan(240, 320).resized == (64, 85)
    plain = save_checkpoint(model, tmp_path / "plain.pt", {})
    assert Segmenter(SegmenterConfig(checkpoint=str(plain), device="cpu")).network_size(240, 320) == (256, 320)


def test_unusable_recommended_size_in_a_sidecar_is_a_config_error(tmp_path):
    model = create_model("ddrnet23_slim", num_classes=19)
    path = save_checkpoint(model, tmp_path / "odd.pt", {"network_input_size": [60, 128]})
    with pytest.raises(ValueError, match="input_size.*odd.pt"):
        Segmenter(SegmenterConfig(checkpoint=str(path), device="cpu"))


# ----------------------------------------------------------------------------- cross-camera batches
def _camera_requests(rng: np.random.Generator, sizes, **wants) -> list:
    from ddrnet_ros.engine import FrameRequest

    orders = ("rgb", "bgr")
    return [FrameRequest(rng.integers(0, 256, (*size, 3), np.uint8), orders[i % 2], stream_key=f"cam{i}", **wants)
            for i, size in enumerate(sizes)]


@pytest.mark.parametrize("wants", [{}, {"want_color": True, "want_overlay": True, "want_confidence": True}])
def test_a_batch_gives_every_frame_what_segment_gives_it_alone(wants):
    torch.manual_seed(0)
    seg = Segmenter(SegmenterConfig(checkpoint="random", device="cpu", input_size=(64, 96)),
                    create_model("ddrnet23_slim").eval())
    requests = _camera_requests(np.random.default_rng(1), [(60, 90), (120, 200), (64, 96), (33, 47)], **wants)
    results = seg.segment_batch(requests, overlay_alpha=0.3, confidence_threshold=0.2)
    assert seg.batches and [r.batch_size for r in results] == [4, 4, 4, 4]  # one network size: one pass
    for request, result in zip(requests, results):
        alone = seg.segment(request.image, request.channel_order, overlay_alpha=0.3, confidence_threshold=0.2,
                            **wants)
        assert result.labels.shape == request.image.shape[:2]
        assert (result.labels == alone.labels).mean() > 0.999
        for name in ("color", "overlay", "confidence"):
            assert (getattr(result, name) is None) == (getattr(alone, name) is None), name


def test_a_batch_runs_one_pass_per_network_size_and_keeps_the_order_of_the_requests():
    seg = Segmenter(SegmenterConfig(checkpoint="random", device="cpu"), create_model("ddrnet23_slim").eval())
    requests = _camera_requests(np.random.default_rng(2), [(40, 64), (24, 80), (40, 64)])
    results = seg.segment_batch(requests)
    assert [r.batch_size for r in results] == [2, 1, 2]  # native sizes: two network sizes
    assert [r.labels.shape for r in results] == [(40, 64), (24, 80), (40, 64)]
    for request, result in zip(requests, results):
        assert np.array_equal(result.labels, seg.segment(request.image, request.channel_order).labels)


def test_backends_without_batches_serve_a_batch_frame_by_frame():
    pytest.importorskip("onnxruntime")
    seg = Segmenter(SegmenterConfig(checkpoint="random", device="cpu", backend="onnxruntime"),
                    create_model("ddrnet23_slim").eval())
    requests = _camera_requests(np.random.default_rng(3), [(40, 64), (40, 64)])
    results = seg.segment_batch(requests)
    assert not seg.batches and [r.batch_size for r in results] == [1, 1]
    for request, result in zip(requests, results):
        assert np.array_equal(result.labels, seg.segment(request.image, request.channel_order).labels)


def test_warm_up_prepares_every_camera_key_and_the_batch_with_all_outputs():
    seg = Segmenter(SegmenterConfig(checkpoint="random", device="cpu", input_size=(64, 96)),
                    create_model("ddrnet23_slim").eval())
    seg.warm_up(["front", "rear"], batch=True)
    from ddrnet_ros.engine.backends.torch_backend import BATCH_STREAM_KEY

    assert {"front", "rear", BATCH_STREAM_KEY} <= set(seg._slots)
    assert seg._slots["front"].frame is not None and seg._slots[BATCH_STREAM_KEY].frame.shape == (2, 3, 64, 128)
