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
reference's labels (up to float rounding at exact ties). Confidence needs every class at
every pixel, so it takes the reference path.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .preprocess import FramePlan

#: Above this share of border pixels the shortcut costs more than the reference; use that.
FAST_LABELS_MAX_BORDER_SHARE = 0.35


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


def fast_labels(logits: torch.Tensor, image_map: ImageMap, plan: FramePlan | None = None) -> torch.Tensor:
    """Labels (H, W) uint8 equal to ``argmax(reference_logits(...))``, computed on the CPU.

    Works per block (up to 8x8 pixels mixing the same cells): a block whose cells all have the
    same argmax takes it; only the other blocks get their logits interpolated, as small batched
    matrix products. Needs fewer than 255 classes (255 marks mixed blocks while it works). When
    most blocks are mixed (noise-like logits) and ``plan`` is given, it uses the reference.
    """
    num_classes, height, width = logits.shape[1], logits.shape[2], logits.shape[3]
    rows, cols = image_map.row_blocks, image_map.col_blocks
    taps_y, taps_x = image_map.rows.taps, image_map.cols.taps
    image_h, image_w = rows.block_of.shape[0], cols.block_of.shape[0]
    code = _window_uniform(logits[0].max(dim=0).indices, taps_y, taps_x)
    block_code = code.index_select(0, rows.start).index_select(1, cols.start)  # (row blocks, col blocks)
    # One spare element at the end takes the writes of block padding (see below).
    buffer = torch.empty(image_h * image_w + 1, dtype=torch.uint8)
    labels = buffer[:-1].view(image_h, image_w)
    torch.index_select(block_code.index_select(0, rows.block_of), 1, cols.block_of, out=labels)
    mixed = (block_code == 255).nonzero()
    if mixed.shape[0] == 0:
        return labels
    if plan is not None and mixed.shape[0] > FAST_LABELS_MAX_BORDER_SHARE * block_code.numel():
        return reference_logits(logits, plan)[0].max(dim=0).indices.to(torch.uint8)
    bi, bj = mixed[:, 0], mixed[:, 1]
    count = bi.shape[0]
    # The window of cells of each mixed block, channels last: (K, taps_y, taps_x * C).
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
    spare = image_h * image_w
    pixel_rows = rows.pixels.index_select(0, bi)
    pixel_cols = cols.pixels.index_select(0, bj)
    row_offsets = torch.where(pixel_rows >= 0, pixel_rows * image_w, spare)
    col_offsets = torch.where(pixel_cols >= 0, pixel_cols, spare)
    targets = (col_offsets[:, :, None] + row_offsets[:, None, :]).clamp_(max=spare)  # padding -> spare
    buffer.index_copy_(0, targets.view(-1), patch_labels.view(-1))
    return labels
