"""Fixtures shared by the whole suite: isolated ROS 2 domains, rclpy contexts, Python subprocesses.

Every test session, and every test that asks for ``ros_domain_id``, gets a DDS domain no other
test on this machine holds at the same time (a lock file per domain id), and discovery stays on
localhost: parallel runs (CI, teammates) never see each other's topics. rclpy is imported only
inside the fixtures that need it, so tests of the ROS-free core never load it.
"""

from __future__ import annotations

import fcntl
import os
import random
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import numpy as np
    import torch
    from rclpy.context import Context

#: Domain ids handed out. Above 101 the DDS ports fall into Linux's ephemeral port range.
DOMAIN_IDS = range(1, 102)
_LOCK_DIR = Path(tempfile.gettempdir()) / "ddrnet_ros_test_domains"


def _claim_domain_id() -> tuple[int, IO[str]]:
    """Lock a domain id no other live process holds; the lock lasts as long as the open file."""
    _LOCK_DIR.mkdir(exist_ok=True)
    for domain_id in random.sample(DOMAIN_IDS, len(DOMAIN_IDS)):
        handle = open(_LOCK_DIR / f"{domain_id}.lock", "w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        return domain_id, handle
    raise RuntimeError(f"all ROS domain ids {DOMAIN_IDS.start}..{DOMAIN_IDS.stop - 1} are taken by other test runs")


_session_lock: IO[str] | None = None


def pytest_configure(config: pytest.Config) -> None:
    """Before any test runs: this session's own domain, discovery on localhost only."""
    global _session_lock
    domain_id, _session_lock = _claim_domain_id()
    os.environ["ROS_DOMAIN_ID"] = str(domain_id)
    # Quantized models made by tests (random weights) stay out of the user's cache.
    os.environ["DDRNET_ROS_CACHE"] = tempfile.mkdtemp(prefix="ddrnet_ros_test_cache_")
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    for name in ("ROS_LOCALHOST_ONLY", "ROS_STATIC_PEERS"):  # deprecated / would widen discovery
        os.environ.pop(name, None)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _session_lock is not None:
        _session_lock.close()


@pytest.fixture
def ros_domain_id() -> Iterator[int]:
    """A DDS domain held by this test alone (other tests here publish the same topic names)."""
    domain_id, handle = _claim_domain_id()
    try:
        yield domain_id
    finally:
        handle.close()


@pytest.fixture
def ros_env(ros_domain_id: int) -> dict[str, str]:
    """Environment for a subprocess that should talk to this test over DDS."""
    return {**os.environ, "ROS_DOMAIN_ID": str(ros_domain_id), "PYTHONUNBUFFERED": "1"}


@pytest.fixture
def rclpy_context(ros_domain_id: int) -> Iterator[Context]:
    """An initialised rclpy context on this test's domain, shut down afterwards."""
    import rclpy

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=ros_domain_id)
    try:
        yield context
    finally:
        if context.ok():
            rclpy.shutdown(context=context)


PythonRunner = Callable[..., subprocess.CompletedProcess]


@pytest.fixture
def run_python(ros_env: dict[str, str]) -> PythonRunner:
    """Run ``python -c code *args`` with this venv's Python on this test's domain; fail loudly.

    Returns the CompletedProcess (text stdout/stderr). With ``check=True`` (default) a non-zero
    exit fails the test and shows both streams.
    """

    def run(code: str, *args: str, timeout: float = 120, check: bool = True,
            env: dict[str, str] | None = None, cwd: str | Path | None = None) -> subprocess.CompletedProcess:
        done = subprocess.run([sys.executable, "-c", code, *args], env=env or ros_env, cwd=cwd,
                              capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if check and done.returncode != 0:
            pytest.fail(f"python subprocess exited {done.returncode}\n--- stdout\n{done.stdout}"
                        f"\n--- stderr\n{done.stderr}", pytrace=False)
        return done

    return run


@pytest.fixture
def spawn_python(ros_env: dict[str, str]) -> Iterator[Callable[..., subprocess.Popen]]:
    """Start ``python -c code *args`` in the background (a publisher, a node); stopped after the test.

    stdout and stderr are pipes (text), read only when the test reads them: for quiet helpers. A
    pipe holds 64 KiB, and a process that writes more (a node at debug level) blocks on its next
    write until someone reads; chatty processes belong in test/ros's ``node_process`` (a log file).
    Teardown sends SIGINT, then SIGKILL after 10 s.
    """
    processes: list[subprocess.Popen] = []

    def spawn(code: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        process = subprocess.Popen([sys.executable, "-c", code, *args], env=env or ros_env,
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        processes.append(process)
        return process

    yield spawn
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
    for process in processes:
        try:
            process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


@pytest.fixture(scope="session")
def random_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Seeded random DDRNet-23-slim weights saved like any checkpoint, so that every process
    that loads it (the node, the evaluator, the test itself) predicts the same."""
    import torch

    from ddrnet_ros.model import create_model, save_checkpoint

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "random.pt"
    save_checkpoint(create_model("ddrnet23_slim").eval(), path)
    return path


@pytest.fixture(scope="session")
def trained_like_model() -> Callable[..., torch.nn.Module]:
    """Builds seeded random DDRNets whose BatchNorm layers carry non-trivial running statistics
    (and, with ``affine=True``, scales and shifts), as a trained model's do: a test then notices a
    path that skips or mis-folds them, which the identity values of a fresh model would hide."""
    import torch

    from ddrnet_ros.model import create_model

    def build(variant: str = "ddrnet23_slim", num_classes: int = 19, affine: bool = False) -> torch.nn.Module:
        torch.manual_seed(0)
        model = create_model(variant, num_classes=num_classes)
        generator = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for module in model.modules():
                if isinstance(module, torch.nn.BatchNorm2d):
                    module.running_mean.copy_(torch.randn(module.running_mean.shape, generator=generator) * 0.1)
                    module.running_var.copy_(torch.rand(module.running_var.shape, generator=generator) + 0.5)
                    if affine:
                        module.weight.copy_(torch.rand(module.weight.shape, generator=generator) + 0.5)
                        module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * 0.1)
        return model.eval()

    return build


#: Frame names of the tiny CamVid-layout tree: two sequences per split, names out of driving
#: order on disk (the reader must sort them), one Seq05VD-style "f" frame number.
CAMVID_FIXTURE_FRAMES = {
    "train": ["0006R0_f00930", "0001TP_006720", "0001TP_006690", "0006R0_f00960"],
    "val": ["0016E5_07961", "0016E5_07959"],
    "test": ["Seq05VD_f00030", "0001TP_008550", "Seq05VD_f00000", "0001TP_008520"],
}
CAMVID_FIXTURE_SIZE = (48, 64)  # height, width


def camvid_pair(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """An RGB frame and its CamVid labels (0 sky, 3 road, 8 car, 11 unlabelled), drawn from ``seed``."""
    import numpy as np

    height, width = CAMVID_FIXTURE_SIZE
    rng = np.random.default_rng(seed)
    labels = np.full((height, width), 3, np.uint8)
    horizon = int(rng.integers(14, 22))
    labels[:horizon] = 0
    top, left = int(rng.integers(horizon, height - 10)), int(rng.integers(0, width - 20))
    labels[top:top + 8, left:left + 18] = 8
    labels[-2:] = 11
    colours = {0: (70, 130, 180), 3: (128, 64, 128), 8: (0, 0, 142), 11: (0, 0, 0)}
    image = np.zeros((height, width, 3), np.uint8)
    for cls, colour in colours.items():
        image[labels == cls] = colour
    noise = rng.integers(-20, 21, image.shape)
    return np.clip(image.astype(int) + noise, 0, 255).astype(np.uint8), labels


def write_camvid_tree(root: Path) -> Path:
    """SegNet's CamVid layout, tiny: ``<split>/<name>.png`` RGB, ``<split>annot/<name>.png`` ids."""
    import cv2

    for split, names in CAMVID_FIXTURE_FRAMES.items():
        (root / split).mkdir(parents=True, exist_ok=True)
        (root / f"{split}annot").mkdir(exist_ok=True)
        for index, name in enumerate(names):
            image, labels = camvid_pair(100 * list(CAMVID_FIXTURE_FRAMES).index(split) + index)
            assert cv2.imwrite(str(root / split / f"{name}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            assert cv2.imwrite(str(root / f"{split}annot" / f"{name}.png"), labels)
    return root


@pytest.fixture(scope="session")
def camvid_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny CamVid tree written by the test session (no CamVid file is ever committed)."""
    return write_camvid_tree(tmp_path_factory.mktemp("camvid") / "CamVid")
