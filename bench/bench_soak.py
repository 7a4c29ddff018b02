"""Soak of the segmentation node: N cameras of 1280x720 rgb8 for minutes, watching memory and latency.

    .venv/bin/python bench/bench_soak.py                                     # 4 cameras x 15 Hz x 10 min
    .venv/bin/python bench/bench_soak.py --minutes 1 --cameras 2 --rate 5    # a quick check (~1.5 min)

Three processes, as on a robot: a camera driver (one publisher per camera, header stamps from the
system clock), the node (the installed segmentation_node executable, else ``python -m ddrnet_ros
run``) with config/segmentation.yaml, random weights on the CPU, and this process, which receives
the labels and /diagnostics and reads the node's RSS from /proc/<pid>/status every 10 s.

The soak starts once every camera has had labels; model warm-up and first allocations come before
and are reported apart. Measured: the node's RSS every 10 s; end-to-end latency (header stamp ->
labels received here) p50/p99 per minute; the node's received/published/dropped/bad-input/failed
totals from /diagnostics, per minute and at the end; frames the driver sent. At 1280x720 on a
CPU the node is usually slower than the cameras: most frames are dropped by its latest-frame
policy, and that is counted, not a fault.

Verdict: RSS drift (mean of the last third of the samples against the first third) <= 2 %, the
last minute's latency p99 <= 1.5x the first minute's, and the node up throughout, exiting 0 on
SIGINT with no ERROR line. Everything goes to --json (default out/soak.json). Neither make test
nor make bench runs this: it takes minutes by design.
"""

from __future__ import annotations

import argparse
import array
import fcntl
import json
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PARAMS = ROOT / "config" / "segmentation.yaml"
RSS_PERIOD_S = 10.0
#: Verdict thresholds (issue #16).
MAX_RSS_DRIFT_PCT = 2.0
MAX_P99_GROWTH = 1.5
#: The node's /diagnostics totals, as "<name>_total".
COUNTERS = ("received", "published", "dropped", "bad_input", "failed")
#: Seconds to wait for the first labels of every camera (model load and warm-up on a slow CPU).
WARMUP_TIMEOUT_S = 180.0
#: Seconds of traffic after every camera's first labels before the soak starts: RSS still climbs
#: over the first frames (allocator pools, torch's caches) and would read as drift of a short soak.
WARMUP_S = 15.0
#: The test suite's domain locks: a soak next to a test run never shares its DDS domain.
DOMAIN_LOCKS = Path(tempfile.gettempdir()) / "ddrnet_ros_test_domains"


# ---------------------------------------------------------------------- the camera driver (child process)
def run_cameras(args: argparse.Namespace) -> int:
    """Publish ``--cameras`` streams of noise rgb8 frames at ``--rate`` Hz until SIGINT/SIGTERM;
    then write how many frames each camera sent to ``--sent-file``."""
    import rclpy
    from rclpy.qos import QoSProfile
    from rclpy.signals import SignalHandlerOptions
    from sensor_msgs.msg import Image

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node("soak_cameras")
    names = camera_names(args.cameras)
    publishers = [node.create_publisher(Image, f"{name}/image_raw", QoSProfile(depth=1)) for name in names]
    data = array.array("B")
    data.frombytes(np.random.default_rng(0).integers(0, 256, args.width * args.height * 3, np.uint8).tobytes())
    messages = [Image(height=args.height, width=args.width, encoding="rgb8", step=args.width * 3, data=data)
                for _ in names]
    deadline = time.monotonic() + WARMUP_TIMEOUT_S
    while any(p.get_subscription_count() == 0 for p in publishers) and time.monotonic() < deadline:
        stop.wait(0.1)  # frames sent before the node subscribes would reach nobody: start with the node
    sent = [0] * len(names)
    period, next_tick = 1.0 / args.rate, time.monotonic()
    while not stop.is_set():
        for i, (publisher, msg) in enumerate(zip(publishers, messages)):
            msg.header.frame_id = names[i]
            msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(time.time_ns(), 1_000_000_000)
            publisher.publish(msg)
            sent[i] += 1
        next_tick += period
        stop.wait(max(0.0, next_tick - time.monotonic()))
    Path(args.sent_file).write_text(json.dumps(dict(zip(names, sent))))
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


def camera_names(count: int) -> list[str]:
    return [f"cam{i}" for i in range(count)]


# ---------------------------------------------------------------------- processes
def claim_domain() -> tuple[int, IO[str]]:
    """A ROS domain id no test run or other soak holds (the suite's lock files); held while the file is open."""
    DOMAIN_LOCKS.mkdir(exist_ok=True)
    for domain in random.sample(range(1, 102), 101):
        handle = open(DOMAIN_LOCKS / f"{domain}.lock", "w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return domain, handle
        except BlockingIOError:
            handle.close()
    raise RuntimeError("every ROS domain id 1..101 is held by a test run")


def soak_env(domain: int) -> dict[str, str]:
    """The processes' environment: their own domain on localhost, the node's shared-memory Fast DDS
    profile for every participant (what docs/node.md recommends to camera drivers of large images)."""
    from ddrnet_ros.ros.qos import FASTDDS_PROFILE

    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
               FASTDDS_DEFAULT_PROFILES_FILE=str(FASTDDS_PROFILE), PYTHONUNBUFFERED="1")
    for name in ("ROS_LOCALHOST_ONLY", "ROS_STATIC_PEERS", "FASTDDS_BUILTIN_TRANSPORTS"):
        env.pop(name, None)
    return env


def node_command(cameras: list[str]) -> list[str]:
    """The installed node executable (what launch starts), else ``python -m ddrnet_ros run``, with
    the shipped params file, random weights on the CPU and these cameras."""
    params = ["-p", "checkpoint:=random", "-p", "device:=cpu", "-p", f"cameras:=[{', '.join(cameras)}]"]
    try:
        from ament_index_python.packages import get_package_prefix

        executable = Path(get_package_prefix("ddrnet_ros")) / "lib" / "ddrnet_ros" / "segmentation_node"
    except Exception:  # noqa: BLE001 - no ament index: not installed, run the module
        executable = None
    if executable is not None and executable.exists():
        return [sys.executable, str(executable), "--ros-args", "--params-file", str(PARAMS), *params]
    return [sys.executable, "-m", "ddrnet_ros", "run", "--params-file", str(PARAMS), "--ros-args", *params]


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """A child process with stdout and stderr in ``log`` (a file: a pipe could fill and block it)."""
    with open(log, "w") as out:
        return subprocess.Popen(command, env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen, timeout: float = 20.0) -> int | None:
    """SIGINT, then SIGKILL after ``timeout``; the exit status of the SIGINT, None if it had to be killed."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return None


def rss_mib(pid: int) -> float:
    """VmRSS of process ``pid`` in MiB (NaN once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return math.nan


# ---------------------------------------------------------------------- what this process receives
@dataclass
class Recorder:
    """Labels (camera, header stamp, receive time; ns, system clock) and /diagnostics totals, as they come."""

    cameras: list[str]
    labels: list[tuple[str, int, int]] = field(default_factory=list)
    #: (receive time ns, camera, totals)
    diagnostics: list[tuple[int, str, dict[str, int]]] = field(default_factory=list)

    def on_labels(self, camera: str, msg: Any) -> None:
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        self.labels.append((camera, stamp, time.time_ns()))

    def on_diagnostics(self, msg: Any) -> None:
        now = time.time_ns()
        for status in msg.status:
            camera = status.name.rpartition(": ")[2]
            values = {kv.key: kv.value for kv in status.values}
            if camera in self.cameras and all(f"{c}_total" in values for c in COUNTERS):
                self.diagnostics.append((now, camera, {c: int(values[f"{c}_total"]) for c in COUNTERS}))

    def latest_totals(self, before_ns: int | None = None) -> dict[str, dict[str, int]]:
        """Each camera's newest totals (received before ``before_ns`` if given)."""
        latest: dict[str, dict[str, int]] = {}
        for received, camera, counts in list(self.diagnostics):
            if before_ns is None or received <= before_ns:
                latest[camera] = counts
        return latest

    def has_labels_from_every_camera(self) -> bool:
        return {camera for camera, _, _ in list(self.labels)} >= set(self.cameras)


def start_receiver(recorder: Recorder, domain: int) -> tuple[Any, Any, threading.Thread]:
    """A receiver node for the labels of every camera and /diagnostics, spinning in a thread."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
    from rclpy.qos import QoSProfile
    from sensor_msgs.msg import Image

    from ddrnet_ros.ros.node import output_topic

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain)
    node = rclpy.create_node("soak_receiver", context=context)
    several = len(recorder.cameras) > 1
    for camera in recorder.cameras:
        node.create_subscription(Image, output_topic(camera, "labels", several),
                                 lambda msg, c=camera: recorder.on_labels(c, msg), QoSProfile(depth=10))
    node.create_subscription(DiagnosticArray, "/diagnostics", recorder.on_diagnostics, QoSProfile(depth=50))
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)

    def spin() -> None:
        try:
            executor.spin()
        except ExternalShutdownException:
            pass

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    return context, executor, thread


# ---------------------------------------------------------------------- the run
@dataclass
class Run:
    """What one soak measured, before any summary."""

    started_ns: int = 0
    warmup_s: float = math.nan
    soak_s: float = 0.0
    rss: list[tuple[float, float]] = field(default_factory=list)  # (seconds into the soak, MiB)
    sent: dict[str, int] = field(default_factory=dict)
    node_alive_throughout: bool = True
    node_exit: int | None = None
    node_errors: list[str] = field(default_factory=list)


def warm_up(recorder: Recorder, node: subprocess.Popen) -> float:
    """Wait until every camera has had labels, then WARMUP_S more: the seconds that took, NaN if the
    node died or never served every camera."""
    started = time.monotonic()
    while not recorder.has_labels_from_every_camera():
        if time.monotonic() - started > WARMUP_TIMEOUT_S or node.poll() is not None:
            return math.nan
        time.sleep(0.1)
    print(f"warm-up: labels from every camera after {time.monotonic() - started:.1f} s; "
          f"{WARMUP_S:g} s more before the soak starts", flush=True)
    time.sleep(WARMUP_S)
    return math.nan if node.poll() is not None else time.monotonic() - started


def sample_rss(node: subprocess.Popen, seconds: float, run: Run) -> None:
    """The node's RSS at the start and every RSS_PERIOD_S until ``seconds`` have passed (or the node died)."""
    started = time.monotonic()
    while True:
        elapsed = time.monotonic() - started
        if node.poll() is not None:
            run.node_alive_throughout = False
            return
        run.rss.append((round(elapsed, 2), rss_mib(node.pid)))
        if elapsed >= seconds - 0.5:
            return
        time.sleep(max(0.0, min(RSS_PERIOD_S * len(run.rss), seconds) - (time.monotonic() - started)))


def settle(recorder: Recorder, timeout: float = 15.0) -> None:
    """After the cameras stop: until /diagnostics, sent a period later, gives every received frame an outcome."""
    fresh_from = time.time_ns() + 1_200_000_000  # the node's diagnostics_period is 1 s (the params file)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        latest = recorder.latest_totals()
        newest = max((received for received, _, _ in list(recorder.diagnostics)), default=0)
        if newest > fresh_from and len(latest) == len(recorder.cameras) and all(
                t["received"] == sum(t[c] for c in COUNTERS[1:]) for t in latest.values()):
            return
        time.sleep(0.2)


def error_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if "ERROR" in line or "Traceback" in line]


def soak(args: argparse.Namespace) -> tuple[Run, Recorder, list[str]]:
    """Start the node, the receiver and the cameras; measure for --minutes; stop everything."""
    import rclpy

    domain, lock = claim_domain()
    env = soak_env(domain)
    os.environ.update({k: env[k] for k in ("ROS_AUTOMATIC_DISCOVERY_RANGE", "FASTDDS_DEFAULT_PROFILES_FILE")})
    cameras = camera_names(args.cameras)
    command = node_command(cameras)
    recorder, run = Recorder(cameras), Run()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        context, executor, thread = start_receiver(recorder, domain)
        node = start(command, env, tmp / "node.log")
        driver = start([sys.executable, __file__, "--role", "camera", "--cameras", str(args.cameras),
                        "--rate", str(args.rate), "--width", str(args.width), "--height", str(args.height),
                        "--sent-file", str(tmp / "sent.json")], env, tmp / "cameras.log")
        try:
            run.warmup_s = warm_up(recorder, node)
            run.started_ns = time.time_ns()
            if not math.isnan(run.warmup_s):
                print(f"soaking for {args.minutes:g} min", flush=True)
                sample_rss(node, args.minutes * 60, run)
            run.soak_s = (time.time_ns() - run.started_ns) / 1e9
        finally:
            stop(driver)
            settle(recorder)
            run.node_alive_throughout &= node.poll() is None
            run.node_exit = stop(node)
            executor.shutdown()
            rclpy.try_shutdown(context=context)
            thread.join(timeout=5)
            lock.close()
        sent_file = tmp / "sent.json"
        run.sent = json.loads(sent_file.read_text()) if sent_file.exists() else {}
        log = (tmp / "node.log").read_text()
        run.node_errors = error_lines(log)
        if math.isnan(run.warmup_s):
            print(f"the node never served every camera; its log ends:\n{log[-3000:]}", file=sys.stderr)
    return run, recorder, command


# ---------------------------------------------------------------------- summary
def percentiles(values: list[float]) -> tuple[float, float]:
    if not values:
        return math.nan, math.nan
    p50, p99 = np.percentile(np.asarray(values, float), [50, 99])
    return float(p50), float(p99)


def minute_rows(run: Run, recorder: Recorder) -> list[dict[str, Any]]:
    """Per soak minute: labels received, output rate, latency p50/p99, the node's counts in that minute
    (totals at its end minus at its start, all cameras) and the last RSS sample in it."""
    rows = []
    minutes = max(1, math.ceil(run.soak_s / 60 - 0.01))  # a sampling overrun of < 0.6 s is no new minute
    for minute in range(minutes):
        start_ns = run.started_ns + minute * 60_000_000_000
        end_ns = min(start_ns + 60_000_000_000, run.started_ns + int(run.soak_s * 1e9))
        latencies = [(rx - stamp) / 1e6 for _, stamp, rx in recorder.labels if start_ns <= rx < end_ns]
        p50, p99 = percentiles(latencies)
        before, after = recorder.latest_totals(start_ns), recorder.latest_totals(end_ns)
        counts = {c: sum(after.get(cam, {}).get(c, 0) - before.get(cam, {}).get(c, 0) for cam in recorder.cameras)
                  for c in COUNTERS}
        rss = [mib for t, mib in run.rss if minute * 60 <= t <= (minute + 1) * 60]
        seconds = max((end_ns - start_ns) / 1e9, 1e-9)
        rows.append({"minute": minute + 1, "labels": len(latencies), "output_hz": len(latencies) / seconds,
                     "latency_p50_ms": p50, "latency_p99_ms": p99, **counts,
                     "rss_mib": rss[-1] if rss else math.nan})
    return rows


def rss_drift_pct(samples: list[tuple[float, float]]) -> float:
    """Mean RSS of the last third of the samples against the first third, in percent."""
    values = [mib for _, mib in samples if not math.isnan(mib)]
    if len(values) < 2:
        return math.nan
    third = max(1, len(values) // 3)
    first, last = float(np.mean(values[:third])), float(np.mean(values[-third:]))
    return (last - first) / first * 100


def verdict(run: Run, rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each criterion with its measured value and whether it passed (NaN never passes)."""
    drift = rss_drift_pct(run.rss)
    growth = rows[-1]["latency_p99_ms"] / rows[0]["latency_p99_ms"] if rows else math.nan
    healthy = run.node_alive_throughout and run.node_exit == 0 and not run.node_errors
    return {
        "rss_drift": {"value_pct": drift, "limit_pct": MAX_RSS_DRIFT_PCT, "passed": drift <= MAX_RSS_DRIFT_PCT},
        "latency_p99_growth": {"value": growth, "limit": MAX_P99_GROWTH, "passed": growth <= MAX_P99_GROWTH},
        "node_health": {"alive_throughout": run.node_alive_throughout, "exit": run.node_exit,
                        "error_lines": len(run.node_errors), "passed": healthy},
    }


def final_totals(run: Run, recorder: Recorder) -> dict[str, dict[str, int]]:
    """Per camera: frames the driver sent and the node's totals after the cameras stopped."""
    latest = recorder.latest_totals()
    return {cam: {"sent": run.sent.get(cam, 0), **latest.get(cam, dict.fromkeys(COUNTERS, 0))}
            for cam in recorder.cameras}


def print_report(run: Run, rows: list[dict[str, Any]],
                 totals: dict[str, dict[str, int]], checks: dict[str, dict[str, Any]]) -> None:
    print(f"\n{'minute':>6} {'labels':>6} {'out Hz':>6} {'p50 ms':>8} {'p99 ms':>8} {'received':>8} "
          f"{'published':>9} {'dropped':>7} {'bad':>4} {'failed':>6} {'RSS MiB':>8}")
    for r in rows:
        print(f"{r['minute']:>6} {r['labels']:>6} {r['output_hz']:6.2f} {r['latency_p50_ms']:8.1f} "
              f"{r['latency_p99_ms']:8.1f} {r['received']:>8} {r['published']:>9} {r['dropped']:>7} "
              f"{r['bad_input']:>4} {r['failed']:>6} {r['rss_mib']:8.1f}")
    print(f"\nRSS every {RSS_PERIOD_S:g} s (MiB): " + " ".join(f"{mib:.1f}" for _, mib in run.rss))
    for cam, t in totals.items():
        print(f"{cam}: sent {t['sent']}, received by the node {t['received']}, published {t['published']}, "
              f"dropped {t['dropped']}, bad input {t['bad_input']}, failed {t['failed']}")
    drift, growth, health = checks["rss_drift"], checks["latency_p99_growth"], checks["node_health"]
    print("\nverdict:")
    print(f"  RSS drift, first third -> last third of the samples: {drift['value_pct']:+.2f} % "
          f"(limit {MAX_RSS_DRIFT_PCT:g} %)  {'PASS' if drift['passed'] else 'FAIL'}")
    print(f"  latency p99, last minute / first minute: {growth['value']:.2f} (limit {MAX_P99_GROWTH:g})  "
          f"{'PASS' if growth['passed'] else 'FAIL'}")
    print(f"  node up throughout: {health['alive_throughout']}, exit status {health['exit']}, "
          f"ERROR lines {health['error_lines']}  {'PASS' if health['passed'] else 'FAIL'}")
    if run.node_errors:
        print("    first ERROR line: " + run.node_errors[0])
    print("SOAK PASSED" if all(c["passed"] for c in checks.values()) else "SOAK FAILED")


def without_nan(value: Any) -> Any:
    """``value`` with every NaN as None: strict JSON has no NaN (a minute without labels has no latency)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: without_nan(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [without_nan(v) for v in value]
    return value


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--rate", type=float, default=15.0, help="frames per second of each camera")
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the soak after warm-up")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--json", default=str(ROOT / "out" / "soak.json"), help="where to write everything")
    parser.add_argument("--role", choices=("camera",), help=argparse.SUPPRESS)
    parser.add_argument("--sent-file", help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    if args.role == "camera":
        return run_cameras(args)
    print(f"soak: {args.cameras} camera(s) x {args.rate:g} Hz x {args.minutes:g} min of {args.width}x{args.height} "
          "rgb8 -> the node in its own process (random ddrnet23_slim on the CPU)", flush=True)
    run, recorder, command = soak(args)
    rows = minute_rows(run, recorder)
    totals = final_totals(run, recorder)
    checks = verdict(run, rows)
    print_report(run, rows, totals, checks)
    record = {"args": {k: v for k, v in vars(args).items() if k not in ("role", "sent_file")},
              "node_command": command, "run": asdict(run), "minutes": rows, "totals": totals, "verdict": checks,
              "labels": recorder.labels}
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(without_nan(record), indent=1))
    print(f"wrote {out}")
    return 0 if all(c["passed"] for c in checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
