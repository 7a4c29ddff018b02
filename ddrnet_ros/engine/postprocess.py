"""Network logits (1/8 of the network frame) -> labels, confidence and logits at the image size.

The reference mapping undoes :func:`~ddrnet_ros.engine.preprocess.plan_frame` literally:
upsample the logits bilinearly (align_corners=False) to the network frame, crop the padding at
the bottom/right, and resize the crop back to the image size. Each step is linear and
separable, so the whole mapping is, per axis, one small matrix from logit cells to image
pixels (:class:`AxisMap`): every image pixel is a convex combination of a few neighbouring
logit cells (2 per axis for plain upsampling, 2-4 when a resize follows).

That gives an exact shortcut for the labels (:func:`fast_labels`): a convex combination of
logit vectors that all have the same argmax has that argmax too. Pixels come in blocks of up
to 8x8 that mix the same few cells; only blocks whose cells disagree (class borders) need
their logits interpolated, everywhere else the label is the 1/8 argmax, copied. On a CPU this
is several times cheaper than upsampling all classes to full resolution, and gives the
reference's labels (up to float rounding at exact ties).

Confidence needs every class at every pixel, and noise-like logits (most blocks mixed) make
the shortcut dearer than interpolating everything. Both take the tiled path
(:func:`tiled_labels`): the same per-axis maps applied band by band of image rows, each band's
logits gathered from the few cell rows it mixes. The reference holds C x H x W floats at once
(~90 bytes per pixel for 19 classes on labels alone, ~240 with confidence); the tiled path
holds the outputs and one band of at most :data:`TILE_PIXELS` pixels, whatever the image size
or content. The shortcut's own work on mixed blocks is chunked to the same budget.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .preprocess import FramePlan

#: Above this share of mixed blocks the shortcut costs more than the tiled path; use that.
#: Measured (one thread, noise mixed into smooth logits): the two cost the same at 70-80 % mixed
#: blocks at 1024x2048 native and at 3840x2160 from a 720x960 network; noise is 100 %.
FAST_LABELS_MAX_BORDER_SHARE = 0.7

#: Image pixels whose logits (all C classes, float32) exist at once off the reference path: a band
#: of :func:`tiled_labels` (whole blocks of rows, at least one) or a chunk of mixed blocks of
#: :func:`fast_labels`. A band and its scratch take under twice 4 x C bytes per budget pixel
#: (19 classes: < 10 MB), instead of 4 x C x H x W for the frame. Small bands stay in the CPU
#: caches: 2**15 to 2**17 pixels cost the same per frame here, 2**18 up to 1.5x more, 2**20 2x.
TILE_PIXELS = 1 << 16


def reference_logits(logits: torch.Tensor, plan: FramePlan) -> torch.Tensor:
    """(1, C, h, w) logits -> (1, C, H, W) at the image size: upsample, crop, resize back."""
    up = F.interpolate(logits, size=plan.network, mode="bilinear", align_corners=False)
    rh, rw = plan.resized
    up = up[:, :, :rh, :rw]
    if plan.needs_resize:
        up = F.interpolate(up, size=plan.image, mode="bilinear", align_corners=False)
    return up


def labels_and_confidence(image_logits: torch.Tensor, want_confidence: bool,
                          ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(1, C, H, W) -> labels (H, W) uint8 and, on request, max softmax (H, W) float in 0..1."""
    top, labels = image_logits[0].max(dim=0)
    if not want_confidence:
        return labels.to(torch.uint8), None
    # max softmax = 1 / sum(exp(l - l_max)); no full softmax tensor is kept.
    denom = torch.exp(image_logits[0] - top.unsqueeze(0)).sum(dim=0)
    return labels.to(torch.uint8), denom.reciprocal_()


def confidence_to_uint8(confidence: torch.Tensor) -> torch.Tensor:
    """0..1 -> 0..255 uint8 (rounded)."""
    return confidence.mul(255.0).round_().clamp_(0, 255).to(torch.uint8)


def apply_threshold(labels: torch.Tensor, confidence: torch.Tensor, threshold: float, ignore_label: int) -> None:
    """Pixels whose confidence is below ``threshold`` become ``ignore_label`` (in place)."""
    if threshold > 0.0:
        labels.masked_fill_(confidence < threshold, ignore_label)


def _bilinear_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) matrix of ``F.interpolate(mode='bilinear', align_corners=False)`` along one axis."""
    scale = n_in / n_out
    dst = np.arange(n_out, dtype=np.float64)
    src = np.maximum((dst + 0.5) * scale - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.where(i0 < n_in - 1, i0 + 1, i0)
    w1 = src - i0
    matrix = np.zeros((n_out, n_in), np.float64)
    rows = np.arange(n_out)
    np.add.at(matrix, (rows, i0), 1.0 - w1)
    np.add.at(matrix, (rows, i1), w1)
    return matrix


@dataclass(frozen=True)
class AxisMap:
    """One axis of the logits -> image mapping: pixel ``p`` = sum_k weights[p, k] * cell[start[p] + k]."""

    start: torch.Tensor    # (n_image,) int64
    weights: torch.Tensor  # (n_image, taps) float32
    n_cells: int

    @property
    def taps(self) -> int:
        return self.weights.shape[1]

    @classmethod
    def build(cls, n_cells: int, n_network: int, n_resized: int, n_image: int) -> AxisMap:
        """Compose upsample (cells -> network), crop (-> resized) and resize (-> image)."""
        up = _bilinear_matrix(n_cells, n_network)[:n_resized]
        full = up if n_resized == n_image else _bilinear_matrix(n_resized, n_image) @ up
        nonzero = full != 0.0
        first = nonzero.argmax(axis=1)
        last = n_cells - 1 - nonzero[:, ::-1].argmax(axis=1)
        taps = int((last - first).max()) + 1
        start = np.minimum(first, n_cells - taps)
        cols = start[:, None] + np.arange(taps)[None, :]
        weights = np.take_along_axis(full, cols, axis=1)
        return cls(torch.from_numpy(start.astype(np.int64)), torch.from_numpy(weights.astype(np.float32)), n_cells)

    def dense(self) -> torch.Tensor:
        """The (n_image, n_cells) matrix (tests)."""
        out = torch.zeros(self.start.shape[0], self.n_cells)
        cols = self.start[:, None] + torch.arange(self.taps)[None, :]
        out.scatter_add_(1, cols, self.weights)
        return out


#: Pixels per block along an axis (see :class:`AxisBlocks`); the upsampling factor of the logits.
BLOCK = 8


@dataclass(frozen=True)
class AxisBlocks:
    """Image pixels along one axis in blocks of at most BLOCK consecutive pixels sharing one ``start``.

    Within a block every pixel mixes the same cells (``start`` .. ``start + taps - 1``), so a block
    row x block column is one patch of the image whose logits come from one window of cells.
    """

    start: torch.Tensor     # (n_blocks,) first cell of each block
    pixels: torch.Tensor    # (n_blocks, BLOCK) pixel indices, -1 past the block's end
    weights: torch.Tensor   # (n_blocks, BLOCK, taps) cell weights, 0 past the block's end
    block_of: torch.Tensor  # (n_image,) the block of each pixel

    @classmethod
    def build(cls, axis: AxisMap) -> AxisBlocks:
        start = axis.start.numpy()
        n = start.shape[0]
        index = np.arange(n)
        run_begins = np.ones(n, bool)
        run_begins[1:] = start[1:] != start[:-1]
        run_first = np.flatnonzero(run_begins)[np.cumsum(run_begins) - 1]
        begins = run_begins | ((index - run_first) % BLOCK == 0)  # split runs longer than BLOCK
        block_of = np.cumsum(begins) - 1
        first = np.flatnonzero(begins)
        position = index - first[block_of]
        pixels = np.full((first.shape[0], BLOCK), -1, np.int64)
        pixels[block_of, position] = index
        weights = np.zeros((first.shape[0], BLOCK, axis.taps), np.float32)
        weights[block_of, position] = axis.weights.numpy()
        return cls(torch.from_numpy(start[first].astype(np.int64)), torch.from_numpy(pixels),
                   torch.from_numpy(weights), torch.from_numpy(block_of.astype(np.int64)))


@dataclass(frozen=True)
class ImageMap:
    """Both axes of the logits -> image mapping for one :class:`FramePlan`, and their blocks."""

    rows: AxisMap
    cols: AxisMap
    row_blocks: AxisBlocks
    col_blocks: AxisBlocks

    @classmethod
    def build(cls, plan: FramePlan) -> ImageMap:
        (ch, cw), (nh, nw), (rh, rw), (h, w) = plan.logits_size, plan.network, plan.resized, plan.image
        rows, cols = AxisMap.build(ch, nh, rh, h), AxisMap.build(cw, nw, rw, w)
        return cls(rows, cols, AxisBlocks.build(rows), AxisBlocks.build(cols))


def _window_uniform(cell_labels: torch.Tensor, taps_y: int, taps_x: int) -> torch.Tensor:
    """(h-ty+1, w-tx+1) uint8: the shared label of each ty x tx window of cells, or 255 if mixed."""
    as_float = cell_labels.to(torch.float32)[None, None]
    high = F.max_pool2d(as_float, (taps_y, taps_x), stride=1)[0, 0]
    low = -F.max_pool2d(-as_float, (taps_y, taps_x), stride=1)[0, 0]
    return torch.where(high == low, high, torch.full_like(high, 255.0)).to(torch.uint8)


def fast_labels(logits: torch.Tensor, image_map: ImageMap, fallback: bool = False) -> torch.Tensor:
    """Labels (H, W) uint8 equal to ``argmax(reference_logits(...))``, computed on the CPU.

    Works per block (up to 8x8 pixels mixing the same cells): a block whose cells all have the
    same argmax takes it; only the other blocks get their logits interpolated, as small batched
    matrix products, :data:`TILE_PIXELS` worth of blocks at a time. Needs fewer than 255 classes
    (255 marks mixed blocks while it works). With ``fallback``, when most blocks are mixed
    (noise-like logits), it labels the frame on the tiled path instead, which is then cheaper.

    The shortcut runs on the calling thread alone (:func:`torch_threads`): its steps are small
    memory-bound ops, and each parallel region waits for every intra-op thread. Measured at
    1024x2048 on 2 cores: 22 ms either way when idle, but 64 ms on one thread against 141 ms on two
    (p90 80 against 320) while another process keeps both cores busy, as other nodes do on a robot.
    """
    with torch_threads(1):
        labels, buffer, mixed, blocks = _uniform_block_labels(logits, image_map)
    if mixed.shape[0] == 0:
        return labels
    if fallback and mixed.shape[0] > FAST_LABELS_MAX_BORDER_SHARE * blocks:
        _label_bands(logits, image_map, labels, None)  # wide products: every intra-op thread helps
        return labels
    with torch_threads(1):
        for chunk in mixed.split(max(1, TILE_PIXELS // (BLOCK * BLOCK))):
            _label_blocks(logits, image_map, chunk, buffer)
    return labels


def _uniform_block_labels(logits: torch.Tensor, image_map: ImageMap,
                          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """(labels, their flat buffer, mixed blocks (K, 2), block count): every block whose cells share an
    argmax labelled with it, the mixed ones holding 255 for now."""
    rows, cols = image_map.row_blocks, image_map.col_blocks
    image_h, image_w = rows.block_of.shape[0], cols.block_of.shape[0]
    code = _window_uniform(logits[0].max(dim=0).indices, image_map.rows.taps, image_map.cols.taps)
    block_code = code.index_select(0, rows.start).index_select(1, cols.start)  # (row blocks, col blocks)
    # One spare element at the end takes the writes of block padding (see _label_blocks).
    buffer = torch.empty(image_h * image_w + 1, dtype=torch.uint8)
    labels = buffer[:-1].view(image_h, image_w)
    torch.index_select(block_code.index_select(0, rows.block_of), 1, cols.block_of, out=labels)
    return labels, buffer, (block_code == 255).nonzero(), block_code.numel()


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Torch's intra-op thread count set to ``count`` inside, restored after. With torch's OpenMP
    builds the count belongs to the calling thread, so other threads of the process keep theirs."""
    previous = torch.get_num_threads()
    if previous == count:
        yield
        return
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _label_blocks(logits: torch.Tensor, image_map: ImageMap, blocks: torch.Tensor, buffer: torch.Tensor) -> None:
    """Interpolate the logits of ``blocks`` ((K, 2): block row, block column) and write their argmax.

    ``buffer`` is the flat label image plus one spare element, the target of block padding."""
    num_classes, height, width = logits.shape[1], logits.shape[2], logits.shape[3]
    rows, cols = image_map.row_blocks, image_map.col_blocks
    taps_y, taps_x = image_map.rows.taps, image_map.cols.taps
    image_w = cols.block_of.shape[0]
    bi, bj = blocks[:, 0], blocks[:, 1]
    count = bi.shape[0]
    # The window of cells of each block, channels last: (K, taps_y, taps_x * C).
    cell_rows = rows.start.index_select(0, bi)[:, None] + torch.arange(taps_y)
    cell_cols = cols.start.index_select(0, bj)[:, None] + torch.arange(taps_x)
    flat = (cell_rows[:, :, None] * width + cell_cols[:, None, :]).reshape(-1)
    cells = logits[0].permute(1, 2, 0).reshape(height * width, num_classes)
    window = cells.index_select(0, flat).view(count, taps_y, taps_x * num_classes)
    # Along y: (K, B, ty) @ (K, ty, tx C); then along x: (K, B, tx) @ (K, tx, B C) -> (K, B_x, B_y, C).
    along_y = torch.bmm(rows.weights.index_select(0, bi), window).view(count, BLOCK, taps_x, num_classes)
    along_y = along_y.permute(0, 2, 1, 3).reshape(count, taps_x, BLOCK * num_classes)
    patch = torch.bmm(cols.weights.index_select(0, bj), along_y).view(count, BLOCK, BLOCK, num_classes)
    patch_labels = patch.max(dim=3).indices.to(torch.uint8)  # (K, B_x, B_y)
    spare = buffer.shape[0] - 1
    pixel_rows = rows.pixels.index_select(0, bi)
    pixel_cols = cols.pixels.index_select(0, bj)
    row_offsets = torch.where(pixel_rows >= 0, pixel_rows * image_w, spare)
    col_offsets = torch.where(pixel_cols >= 0, pixel_cols, spare)
    targets = (col_offsets[:, :, None] + row_offsets[:, None, :]).clamp_(max=spare)  # padding -> spare
    buffer.index_copy_(0, targets.view(-1), patch_labels.view(-1))


def tiled_labels(logits: torch.Tensor, image_map: ImageMap, want_confidence: bool,
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``labels_and_confidence(reference_logits(...))`` with memory bounded by :data:`TILE_PIXELS`.

    Labels (H, W) uint8 and, on request, max softmax (H, W) float32, computed band by band of
    image rows; equal to the reference up to float rounding (the composed maps round differently
    from two literal resizes), for any content: nothing depends on where the classes change.
    """
    height, width = image_map.rows.start.shape[0], image_map.cols.start.shape[0]
    labels = torch.empty((height, width), dtype=torch.uint8)
    confidence = torch.empty((height, width), dtype=torch.float32) if want_confidence else None
    _label_bands(logits, image_map, labels, confidence)
    return labels, confidence


def _label_bands(logits: torch.Tensor, image_map: ImageMap, labels: torch.Tensor,
                 confidence: torch.Tensor | None) -> None:
    """Fill ``labels`` (and ``confidence``) band by band: whole row blocks, TILE_PIXELS pixels at most."""
    blocks = image_map.row_blocks
    count, width = blocks.start.shape[0], labels.shape[1]
    step = max(1, TILE_PIXELS // (BLOCK * width))
    for first in range(0, count, step):
        chunk = slice(first, min(count, first + step))
        band = _band_logits(logits, image_map, chunk)  # (rows incl. block padding, C, W)
        keep = (blocks.pixels[chunk].reshape(-1) >= 0).nonzero().squeeze(1)
        top = int(blocks.pixels[first, 0])
        rows = slice(top, top + keep.shape[0])  # a band of blocks is a band of consecutive image rows
        labels[rows] = _first_max(band).index_select(0, keep)
        if confidence is not None:
            # max softmax = 1 / sum(exp(l - l_max)), as labels_and_confidence; _first_max left l - l_max.
            confidence[rows] = band.exp_().sum(dim=1).index_select(0, keep).reciprocal_()


def _first_max(band: torch.Tensor) -> torch.Tensor:
    """(rows, C, W) logits -> (rows, W) uint8 first class reaching the maximum; ``band`` becomes l - l_max.

    The labels of ``band.max(dim=1).indices`` (the first maximum on ties) at under half its CPU cost
    (max with indices over C is not vectorised): a pixel's maximum minus itself is exactly 0 and
    every other logit minus it is below 0, so the label is the first class where l - l_max == 0.
    """
    num_classes = band.shape[1]
    band.sub_(band.amax(dim=1, keepdim=True))
    rank = torch.arange(num_classes, 0, -1, dtype=torch.uint8).view(1, -1, 1)  # class c -> C - c
    highest = (band == 0).view(torch.uint8).mul_(rank).amax(dim=1)  # C - (first maximal class)
    return highest.neg_().add_(num_classes)  # C - highest, in uint8 (never below 0)


def _band_logits(logits: torch.Tensor, image_map: ImageMap, chunk: slice) -> torch.Tensor:
    """(BLOCK x blocks, C, W) image logits of the row blocks ``chunk`` (block padding rows are 0).

    Only the cell rows these blocks mix are interpolated along x (a few gathers of cell columns);
    then every block of rows is one small product, (BLOCK, taps) weights times its (taps, C x W)
    window of those rows, so the band is written once, with no dense matrix and nothing frame-sized.
    """
    blocks, taps = image_map.row_blocks, image_map.rows.taps
    start = blocks.start[chunk]
    first, last = int(start[0]), int(start[-1]) + taps
    num_classes, width = logits.shape[1], image_map.cols.start.shape[0]
    cells = logits[0, :, first:last].permute(1, 2, 0)  # (last - first, w, C)
    cell_rows = _along_x(cells, image_map.cols).permute(0, 2, 1).contiguous()  # (last - first, C, W)
    windows = (start - first)[:, None] + torch.arange(taps)
    window = cell_rows.view(last - first, -1).index_select(0, windows.view(-1)).view(-1, taps, num_classes * width)
    band = torch.bmm(blocks.weights[chunk], window)  # (blocks, BLOCK, C W)
    return band.view(-1, num_classes, width)


def _along_x(cells: torch.Tensor, cols: AxisMap) -> torch.Tensor:
    """(n, w, C) cells -> (n, W, C): each row of cells interpolated to the image's columns.

    Channels last, so that every tap gathers whole class vectors (several times faster than
    gathering single values along the last axis)."""
    out = cells.index_select(1, cols.start).mul_(cols.weights[:, :1])
    for k in range(1, cols.taps):
        out.addcmul_(cells.index_select(1, cols.start + k), cols.weights[:, k:k + 1])
    return out
