"""Every inference backend against plain eager PyTorch, side by side in one run (``ddrnet-ros bench``).

For each variant and image size, every contender segments the same synthetic road image
(labels only, as the node's labels topic). Iterations are interleaved round-robin over the
contenders, so that load from other processes hits them all alike; each contender has its
warm-up first. Printed per contender: p50/p90 of the whole ``segment`` call (preprocess,
network, postprocess), the ratio of its p50 to plain eager's, and the share of pixels whose
label equals plain eager's.

Plain eager is the baseline the targets refer to: the model as written, fp32, no BN folding,
every class upsampled to full size before the argmax (``Segmenter(optimize=False)``).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from .config import SegmenterConfig
from .loading import load_model
from .postprocess import ImageMap, fast_labels, labels_and_confidence, reference_logits
from .preprocess import fill_network_input, normalise_numpy
from .segmenter import Segmenter

DEFAULT_SIZES = ("512x1024", "1024x2048")
#: The speed targets, for this variant and size: the fastest accurate pipeline's p50 <= PEER_TARGET x
#: the peer's and <= EAGER_TARGET x plain eager's; "accurate": labels equal fp32 eager's on >= AGREEMENT.
TARGET = ("ddrnet23_slim", (1024, 2048), 0.5)
PEER_TARGET, EAGER_TARGET, AGREEMENT = 0.5, 0.15, 0.98
#: ... and, where CamVid val is scored (``--camvid-root``), an mIoU within this many points of fp32 eager's.
MIOU_TOLERANCE_POINTS = 1.0
PEER_NAME = "peer: OpenVINO defaults, network only"
#: Rows of bench-only pipelines (not what the engine runs), left out of the target verdict.
LABELS_IN_GRAPH = "(labels in graph)"
NETWORK_ONLY = "(network only)"
BENCH_ONLY = (LABELS_IN_GRAPH, NETWORK_ONLY)


@dataclass
class Contender:
    name: str
    segmenter: Segmenter | None
    times_ms: list[float] = field(default_factory=list)
    agreement: float | None = None
    #: what is timed when there is no segmenter (the peer: the network alone)
    run: Any = None

    def __call__(self, image: np.ndarray) -> np.ndarray | None:
        if self.segmenter is None:
            return self.run(image)
        return self.segmenter.segment(image).labels


class LabelsInGraph:
    """An OpenVINO pipeline whose labels leave the graph: the network, then the plan's fp32 label head
    (``OpenVinoModel.infer_labels_uint8``), against the engine's host label step side by side.
    Measured here (2 idle cores, shipped model, CamVid frames): the host's border-only labels were
    1.8-4x faster than the head on every plan, so the engine keeps them; this row shows whether that
    holds on another machine."""

    def __init__(self, segmenter: Segmenter) -> None:
        from .backends.openvino_backend import OpenVinoModel

        assert isinstance(segmenter.backend, OpenVinoModel)
        self.segmenter = segmenter
        self.backend: OpenVinoModel = segmenter.backend

    def __call__(self, image: np.ndarray) -> np.ndarray:
        plan = self.segmenter.frame_plan(*image.shape[:2])
        if plan.network != plan.image:
            raise ValueError(f"labels in the graph are benched on frames of the network size, not {plan.image}")
        return self.backend.infer_labels_uint8(np.ascontiguousarray(image), "rgb", plan)


class NetworkOnly:
    """An OpenVINO pipeline's network alone (the uint8 frame in, logits out, no labels), timed as the
    peer is: splits the gap to the peer into the network's share and the host steps' share."""

    def __init__(self, segmenter: Segmenter) -> None:
        from .backends.openvino_backend import OpenVinoModel

        assert isinstance(segmenter.backend, OpenVinoModel)
        self.segmenter = segmenter
        self.infer_uint8 = segmenter.backend.infer_uint8

    def __call__(self, image: np.ndarray) -> None:
        plan = self.segmenter.frame_plan(*image.shape[:2])
        if plan.network != plan.image:
            raise ValueError(f"the network alone is benched on frames of the network size, not {plan.image}")
        self.infer_uint8(np.ascontiguousarray(image), "rgb")


class OfficialOnOpenVino:
    """The peer a user could assemble: the official network (as written, BN not folded) exported to
    ONNX and run by OpenVINO with its default settings (bf16 on CPUs that have it), fed a ready
    normalised float frame; only the network is timed, no pre- or post-processing."""

    def __init__(self, module: torch.nn.Module, threads: int) -> None:
        import openvino as ov

        from .backends.openvino_backend import float_openvino_model

        self.core = ov.Core()
        self.model = float_openvino_model(module, self.core, fold_bn=False)  # the official network, as is
        self.config = {"INFERENCE_NUM_THREADS": threads} if threads else {}
        self._request: Any = None
        self._shape: tuple[int, int] | None = None
        self._frame: np.ndarray | None = None

    def __call__(self, image: np.ndarray) -> None:
        import openvino as ov

        if self._shape != image.shape[:2]:
            sized = self.model.clone()
            sized.reshape({sized.input(0).get_any_name(): ov.PartialShape([1, 3, *image.shape[:2]])})
            self._request = self.core.compile_model(sized, "CPU", self.config).create_infer_request()
            self._frame = normalise_numpy(image)[None]  # prepared outside the timing: the peer's favour
            self._shape = (image.shape[0], image.shape[1])
        self._request.infer({0: self._frame})


@dataclass
class Row:
    variant: str
    size: tuple[int, int]
    name: str
    min_ms: float
    p50_ms: float
    p90_ms: float
    ratio: float
    agreement: float | None
    iterations: int
    vs_peer: float | None = None


def make_contenders(variant: str, checkpoint: str, threads: int, backends: list[str],
                    channels_last: bool, precisions: tuple[str, ...] = ("fp32",),
                    size: tuple[int, int] | None = None) -> list[Contender]:
    """Plain eager first (the baseline), the peer where OpenVINO is installed, then every pipeline;
    with ``size``, every pipeline runs the network at exactly that size (int8 is calibrated there)."""
    base = SegmenterConfig(variant=variant, checkpoint=checkpoint, device="cpu", num_threads=threads, input_size=size)
    # Load the weights once and share them. The sidecar's recommended network size is dropped, so
    # that every contender runs the network at the measured image size; the file's sha256 stays,
    # so the int8 calibration is the one a node loading the same file finds in the cache.
    loaded = replace(load_model(variant, checkpoint), metadata={})
    contenders = [Contender("eager fp32 (plain)", Segmenter(base, loaded, optimize=False))]
    if "openvino" in backends:
        contenders.append(Contender(PEER_NAME, None, run=OfficialOnOpenVino(loaded.module, threads)))
    for backend in backends:
        if backend == "torch":
            contenders.append(Contender("torch (BN folded)", Segmenter(base, loaded)))
            if channels_last:
                contenders.append(Contender("torch channels_last",
                                            Segmenter(replace(base, channels_last=True), loaded)))
        elif backend == "openvino":
            for precision in precisions:
                segmenter = Segmenter(replace(base, backend=backend, precision=precision), loaded)
                contenders.append(Contender(f"openvino {precision} (uint8 in)", segmenter))
            if size is not None:
                contenders.append(Contender(f"openvino {precisions[-1]} {LABELS_IN_GRAPH}", None,
                                            run=LabelsInGraph(segmenter)))
                contenders.append(Contender(f"openvino {precisions[-1]} {NETWORK_ONLY}", None,
                                            run=NetworkOnly(segmenter)))
        else:
            contenders.append(Contender(backend, Segmenter(replace(base, backend=backend), loaded)))
    return contenders


def bench_image(height: int, width: int) -> np.ndarray:
    """A synthetic road scene (large regions, like a camera image); noise if rendering fails."""
    try:
        from ddrnet_ros.data.synthetic import generate_scene

        return generate_scene(7, height, width).image
    except Exception:  # the renderer is a nicety here, not a requirement
        return np.random.default_rng(7).integers(0, 256, (height, width, 3), dtype=np.uint8)


def run_size(contenders: list[Contender], image: np.ndarray, iterations: int, warmup: int) -> None:
    for contender in contenders:
        contender.times_ms = []
        for _ in range(warmup):
            contender(image)
    reference = None
    for _ in range(iterations):
        for contender in contenders:
            started = time.perf_counter()
            labels = contender(image)
            contender.times_ms.append((time.perf_counter() - started) * 1e3)
            if labels is None:
                continue
            if reference is None:
                reference = labels
            contender.agreement = float((labels == reference).mean())


def postprocess_costs(segmenter: Segmenter, image: np.ndarray, repeats: int = 5) -> dict[str, float]:
    """Full upsample+argmax vs the border-only label shortcut, on the same logits (ms, p50)."""
    plan = segmenter.frame_plan(*image.shape[:2])
    frame = torch.zeros((1, 3, *plan.network))
    fill_network_input(frame, torch.from_numpy(np.ascontiguousarray(image)), plan, "rgb")
    logits = segmenter.backend.infer(frame)
    image_map = ImageMap.build(plan)
    full, fast = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        reference, _ = labels_and_confidence(reference_logits(logits, plan), want_confidence=False)
        full.append((time.perf_counter() - started) * 1e3)
        started = time.perf_counter()
        labels = fast_labels(logits, image_map, fallback=True)
        fast.append((time.perf_counter() - started) * 1e3)
    cells = logits[0].argmax(0)
    border_cells = float(((cells[1:, :] != cells[:-1, :])[:, :-1] | (cells[:, 1:] != cells[:, :-1])[:-1, :])
                         .double().mean())
    return {"full_ms": float(np.median(full)), "fast_ms": float(np.median(fast)),
            "agreement": float((labels == reference).double().mean()), "border_cells": border_cells}


def summarise(variant: str, size: tuple[int, int], contenders: list[Contender]) -> list[Row]:
    base = float(np.percentile(contenders[0].times_ms, 50))
    peer = next((float(np.percentile(c.times_ms, 50)) for c in contenders if c.name == PEER_NAME), None)
    rows = []
    for c in contenders:
        p50, p90 = float(np.percentile(c.times_ms, 50)), float(np.percentile(c.times_ms, 90))
        rows.append(Row(variant, size, c.name, min(c.times_ms), p50, p90, p50 / base, c.agreement, len(c.times_ms),
                        None if peer is None else p50 / peer))
    return rows


def verdict(rows: list[Row], camvid_miou: dict[str, float] | None = None) -> str | None:
    """The target line: the fastest accurate pipeline against the peer and plain eager. Accurate: labels
    equal fp32 eager's on >= AGREEMENT of the bench image and, where CamVid val was scored, an mIoU
    within MIOU_TOLERANCE_POINTS of fp32 eager's."""
    peer = next((r for r in rows if r.name == PEER_NAME), None)
    accurate = [r for r in rows[1:] if r.agreement is not None and r.agreement >= AGREEMENT
                and within_miou_tolerance(r.name, camvid_miou) and not any(m in r.name for m in BENCH_ONLY)]
    if peer is None or not accurate:
        return None
    best = min(accurate, key=lambda r: r.p50_ms)
    met = best.p50_ms <= PEER_TARGET * peer.p50_ms and best.ratio <= EAGER_TARGET
    return (f"target (fastest accurate pipeline <= {PEER_TARGET}x the peer and <= {EAGER_TARGET}x plain eager): "
            f"{'met' if met else 'NOT met'}: {best.name} {best.p50_ms:.0f} ms = {best.vs_peer:.2f}x the peer "
            f"({peer.p50_ms:.0f} ms), {best.ratio:.2f}x plain eager ({rows[0].p50_ms:.0f} ms), "
            f"labels = eager on {best.agreement:.2%}")


def print_table(rows: list[Row], post: dict[str, float] | None, out: Any = None) -> None:
    out = out or sys.stdout
    variant, (h, w) = rows[0].variant, rows[0].size
    print(f"\n{variant} at {h}x{w}: {rows[0].iterations} interleaved iterations", file=out)
    print(f"  {'contender':<40}{'p50 ms':>9}{'p90 ms':>9}{'vs eager':>10}{'vs peer':>9}{'min ms':>9}"
          f"{'labels = eager':>16}", file=out)
    for r in rows:
        agree = "-" if r.agreement is None else f"{r.agreement:.4%}"
        peer = "-" if r.vs_peer is None else f"{r.vs_peer:.2f}x"
        print(f"  {r.name:<40}{r.p50_ms:>9.1f}{r.p90_ms:>9.1f}{r.ratio:>9.2f}x{peer:>9}{r.min_ms:>9.1f}{agree:>16}",
              file=out)
    if post:
        print(f"  postprocess of one frame's logits: upsample all classes + argmax {post['full_ms']:.1f} ms, "
              f"border-only labels {post['fast_ms']:.1f} ms ({post['border_cells']:.1%} border cells, "
              f"labels equal {post['agreement']:.4%})", file=out)


def within_miou_tolerance(name: str, camvid_miou: dict[str, float] | None) -> bool:
    """Whether pipeline ``name`` scores within MIOU_TOLERANCE_POINTS of the first (fp32 eager); True unscored."""
    if not camvid_miou or name not in camvid_miou:
        return True
    return 100 * (camvid_miou[name] - next(iter(camvid_miou.values()))) >= -MIOU_TOLERANCE_POINTS


def print_camvid_scores(variant: str, scores: dict[str, float], network: Any, frames: int, out: Any = None) -> None:
    """mIoU per pipeline against plain eager fp32, flagging those more than MIOU_TOLERANCE_POINTS below."""
    out = out or sys.stdout
    size = "x".join(str(v) for v in network) if network else "the image size"
    print(f"\n{variant} on CamVid val ({frames} frames, network input {size}): 11-class mIoU", file=out)
    base = next(iter(scores.values()))
    for name, miou in scores.items():
        delta = 100 * (miou - base)
        below = f"  (more than {MIOU_TOLERANCE_POINTS:g} point below fp32)"
        flag = "" if within_miou_tolerance(name, scores) else below
        print(f"  {name:<40}{miou:>8.4f}{delta:>+9.2f} pts{flag}", file=out)
