"""Progress of a training run: a bar on a terminal, a log line every N iterations elsewhere."""

from __future__ import annotations

import logging
import time

LOG = logging.getLogger("ddrnet_ros.train")


class Progress:
    """Smoothed loss and images/s, shown as a tqdm bar (terminal) or periodic log lines."""

    def __init__(self, total: int, start: int, batch_size: int, log_every: int, use_bar: bool) -> None:
        self.total, self.batch_size, self.log_every = total, batch_size, log_every
        self.loss_ema: float | None = None
        self.rate_ema: float | None = None
        self._tick = time.monotonic()
        self._bar = None
        if use_bar:
            from tqdm import tqdm  # only on a terminal

            self._bar = tqdm(total=total, initial=start, unit="it", dynamic_ncols=True, desc="train")

    def update(self, iteration: int, loss: float, lr: float, images: int) -> None:
        now = time.monotonic()
        rate = images / max(now - self._tick, 1e-9)
        self._tick = now
        self.loss_ema = loss if self.loss_ema is None else 0.9 * self.loss_ema + 0.1 * loss
        self.rate_ema = rate if self.rate_ema is None else 0.9 * self.rate_ema + 0.1 * rate
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix(loss=f"{self.loss_ema:.3f}", lr=f"{lr:.2e}", img_s=f"{self.rate_ema:.1f}")
        elif iteration % self.log_every == 0 or iteration == self.total:
            eta_s = (self.total - iteration) * self.batch_size / max(self.rate_ema, 1e-9)
            LOG.info("it %d/%d  loss %.4f  lr %.2e  %.1f img/s  eta %.0f min", iteration, self.total, self.loss_ema,
                     lr, self.rate_ema, eta_s / 60)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
