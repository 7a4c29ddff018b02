"""Cross-process benchmark of the segmentation node and of the DDS transport beneath it.

    .venv/bin/python bench/bench_node.py                   # transport matrix + node at 10 Hz and flat out
    .venv/bin/python bench/bench_node.py --only transport  # just the raw DDS comparison
    .venv/bin/python bench/bench_node.py --only settings --frames 100  # node process settings side by side

Everything runs side by side in one invocation, in separate processes as on a robot:

* transport: a publisher process sends 2048x1024 rgb8 images at 10 Hz to a receiver process,
  with Fast DDS left at its defaults, with ``FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA`` on both
  sides, with the node's shared-memory profile (ddrnet_ros/ros/fastdds_large_images.xml) on
  both sides and on the publisher only; reliable and best effort. Prints delivered/sent and
  latency p50/p99.
* node: publisher process -> ``ddrnet-ros run`` process -> labels receiver process, at 10 Hz and
  as fast as the publisher can send. The node logs, at debug level, each frame's wait, engine
  time and time in the node; end-to-end latency (header stamp -> labels received) minus that
  frame's engine time is the node's overhead, including both DDS hops. Prints p50/p99 of each,
  output rate, frames dropped by the latest-frame policy, and whether latency grew over the run.
* settings: the same node case at 10 Hz once per node process setting in NODE_SETTINGS (OpenMP
  wait policy, Fast DDS publication mode), everything else unchanged.

Target (issue 5): overhead median <= 15 ms and p99 <= 30 ms at 10 Hz, no backlog growth.
"""

from __future__ import annotations

import argparse
import array
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WIDTH, HEIGHT = 2048, 1024


# ---------------------------------------------------------------------- roles (child processes)
def _qos(reliability: str):
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    return QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE if reliability == "reliable"
                      else ReliabilityPolicy.BEST_EFFORT)


def role_publish(args: argparse.Namespace) -> None:
    """Publish ``--count`` rgb8 frames at ``--rate`` Hz (0: back to back) once a subscriber is there."""
    import rclpy
    from sensor_msgs.msg import Image

    rclpy.init()
    node = rclpy.create_node("bench_camera")
    publisher = node.create_publisher(Image, args.topic, _qos(args.reliability))
    rng = np.random.default_rng(0)
    data = array.array("B")
    data.frombytes(rng.integers(0, 255, HEIGHT * WIDTH * 3, np.uint8).tobytes())
    deadline = time.monotonic() + 20
    while publisher.get_subscription_count() < args.subscribers and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(args.settle)
    period = 1.0 / args.rate if args.rate > 0 else 0.0
    next_time = start = time.monotonic()
    sent = 0

    def more() -> bool:
        """A rate sends --count frames; flat out (rate 0) sends for as long as --count frames take at 10 Hz."""
        return sent < args.count if period else time.monotonic() - start < args.count / 10

    while more():
        msg = Image(height=HEIGHT, width=WIDTH, encoding="rgb8", step=WIDTH * 3, data=data)
        msg.header.frame_id = "bench_camera"
        now = time.time_ns()
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(now, 1_000_000_000)
        publisher.publish(msg)
        sent += 1
        next_time += period
        time.sleep(max(0.0, next_time - time.monotonic()))
    if args.out:
        Path(args.out).write_text(str(sent))
    time.sleep(1.0)  # let reliable retransmissions finish
    node.destroy_node()
    rclpy.shutdown()


def role_receive(args: argparse.Namespace) -> None:
    """Record (header stamp, receive time) of every Image on ``--topic`` until idle; write JSON."""
    import rclpy
    from sensor_msgs.msg import Image

    rclpy.init()
    node = rclpy.create_node("bench_receiver")
    samples: list[tuple[int, int]] = []

    def on_image(msg: Image) -> None:
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        samples.append((stamp, time.time_ns()))

    node.create_subscription(Image, args.topic, on_image, _qos(args.reliability))
    Path(args.ready).touch()
    start = last = time.monotonic()
    while time.monotonic() - start < args.timeout:
        count = len(samples)
        rclpy.spin_once(node, timeout_sec=0.1)
        if len(samples) != count:
            last = time.monotonic()
        elif samples and time.monotonic() - last > args.idle:
            break
    Path(args.out).write_text(json.dumps(samples))
    node.destroy_node()
    rclpy.shutdown()


# ---------------------------------------------------------------------- orchestration
def _env(transport: str, domain: int) -> dict[str, str]:
    from ddrnet_ros.ros.qos import FASTDDS_PROFILE

    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
               PYTHONUNBUFFERED="1")
    for name in ("FASTDDS_BUILTIN_TRANSPORTS", "FASTDDS_DEFAULT_PROFILES_FILE"):
        env.pop(name, None)
    if transport == "LARGE_DATA":
        env["FASTDDS_BUILTIN_TRANSPORTS"] = "LARGE_DATA"
    elif transport == "shm-profile":
        env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(FASTDDS_PROFILE)
    # "default"/"default-node": nothing set; the node process then applies its profile by itself
    return env


def _child(role: str, env: dict[str, str], *extra: str, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, "--role", role, *extra], env=env, cwd=ROOT, **popen)


def _wait_file(path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def _stats(values) -> tuple[float, float]:
    values = np.asarray(list(values), float)
    if values.size == 0:
        return float("nan"), float("nan")
    p50, p99 = np.percentile(values, [50, 99])
    return float(p50), float(p99)


def transport_case(pub_transport: str, sub_transport: str, reliability: str, count: int, domain: int,
                   tmp: Path) -> dict:
    out, ready = tmp / f"rx{domain}.json", tmp / f"ready{domain}"
    receiver = _child("receive", _env(sub_transport, domain), "--topic", "bench_image", "--reliability", reliability,
                      "--out", str(out), "--ready", str(ready), "--idle", "3", "--timeout", str(15 + count / 5))
    _wait_file(ready, 20)
    publisher = _child("publish", _env(pub_transport, domain), "--topic", "bench_image", "--reliability",
                       reliability, "--count", str(count), "--rate", "10")
    publisher.wait()
    receiver.wait()
    samples = json.loads(out.read_text()) if out.exists() else []
    latency = [(rx - stamp) / 1e6 for stamp, rx in samples]
    p50, p99 = _stats(latency)
    return {"publisher": pub_transport, "subscriber": sub_transport, "reliability": reliability,
            "sent": count, "received": len(samples), "p50_ms": p50, "p99_ms": p99}


FRAME_LOG = re.compile(r"frame (\d+)\.(\d{9}) waited ([\d.]+) ms, inference ([\d.]+) ms, in node ([\d.]+) ms")


#: Process settings compared side by side for the node alone (camera and receiver unchanged).
NODE_SETTINGS: dict[str, dict[str, str]] = {
    "as shipped": {},
    "OMP spin": {"OMP_WAIT_POLICY": "ACTIVE"},
    "OMP passive": {"OMP_WAIT_POLICY": "PASSIVE"},
    "async publish": {"RMW_FASTRTPS_PUBLICATION_MODE": "ASYNCHRONOUS"},
    "sync publish": {"RMW_FASTRTPS_PUBLICATION_MODE": "SYNCHRONOUS"},
}


def node_case(rate: float, count: int, transport: str, input_size: tuple[int, int], domain: int, tmp: Path,
              node_env: dict[str, str] | None = None) -> dict:
    env = _env(transport, domain)
    for name in ("OMP_WAIT_POLICY", "RMW_FASTRTPS_PUBLICATION_MODE"):
        env.pop(name, None)  # the cases below set them explicitly; nothing leaks in from the shell
    log_path, out, ready = tmp / f"node{domain}.log", tmp / f"labels{domain}.json", tmp / f"ready{domain}"
    with open(log_path, "w") as log:
        node = subprocess.Popen(
            [sys.executable, "-m", "ddrnet_ros.cli", "run", "--params-file", str(ROOT / "config/segmentation.yaml"),
             "--ros-args", "-p", "checkpoint:=random", "-p", "device:=cpu",
             "-p", f"input_size:=[{input_size[0]}, {input_size[1]}]",
             "-r", "camera/image_raw:=bench_image", "--log-level", "segmentation_node:=debug"],
            env={**env, **(node_env or {})}, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        receiver = _child("receive", env, "--topic", "segmentation/labels", "--reliability", "reliable",
                          "--out", str(out), "--ready", str(ready), "--idle", "5", "--timeout", str(60 + count))
        _wait_file(ready, 20)
        # the node subscribes, and the receiver subscribes to the node: wait for both before sending
        sent_file = tmp / f"sent{domain}"
        publisher = _child("publish", env, "--topic", "bench_image", "--reliability", "reliable",
                           "--count", str(count), "--rate", str(rate), "--settle", "2", "--out", str(sent_file))
        started = time.monotonic()
        publisher.wait()
        receiver.wait()
        elapsed = time.monotonic() - started
        node.send_signal(signal.SIGINT)
        try:
            node.wait(timeout=20)
        except subprocess.TimeoutExpired:
            node.kill()
    text = log_path.read_text()
    sent = int(sent_file.read_text()) if sent_file.exists() else count
    frames = {int(s) * 1_000_000_000 + int(ns): (float(w), float(i), float(t))
              for s, ns, w, i, t in FRAME_LOG.findall(text)}
    samples = json.loads(out.read_text()) if out.exists() else []
    e2e, overhead, wait, inference, work, dds = [], [], [], [], [], []
    for stamp, rx in samples:
        if stamp in frames:
            w, i, in_node = frames[stamp]
            latency = (rx - stamp) / 1e6
            e2e.append(latency)
            overhead.append(latency - i)
            wait.append(w)
            inference.append(i)
            work.append(in_node - w - i)  # decode, encode, publish
            dds.append(latency - in_node)  # camera -> node and node -> receiver
    quarter = max(1, len(e2e) // 4)
    growth = float(np.mean(e2e[-quarter:]) - np.mean(e2e[:quarter])) if e2e else float("nan")
    span = (samples[-1][1] - samples[0][1]) / 1e9 if len(samples) > 1 else float("nan")
    result = {"rate_hz": rate, "transport": transport, "input_size": list(input_size), "sent": sent,
              "processed": len(frames), "received": len(samples), "dropped": sent - len(frames),
              "output_rate_hz": (len(samples) - 1) / span if span == span and span > 0 else float("nan"),
              "e2e": _stats(e2e), "engine": _stats(inference), "overhead": _stats(overhead),
              "slot_wait": _stats(wait), "node_work": _stats(work), "dds": _stats(dds), "latency_growth_ms": growth, "elapsed_s": elapsed}
    if not frames:
        result["node_log_tail"] = text[-2000:]
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", choices=("publish", "receive"))
    parser.add_argument("--topic")
    parser.add_argument("--reliability", default="reliable")
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--subscribers", type=int, default=1)
    parser.add_argument("--settle", type=float, default=0.5)
    parser.add_argument("--out")
    parser.add_argument("--ready")
    parser.add_argument("--idle", type=float, default=3.0)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--only", choices=("transport", "node", "settings"))
    parser.add_argument("--frames", type=int, default=40, help="frames per case")
    parser.add_argument("--input-size", type=int, nargs=2, default=(128, 256), metavar=("H", "W"),
                        help="network input size of the node (0 0: full 2048x1024)")
    parser.add_argument("--domain", type=int, default=140 + os.getpid() % 60)
    parser.add_argument("--json", help="also write all results to this file")
    args = parser.parse_args()
    if args.role == "publish":
        role_publish(args)
        return 0
    if args.role == "receive":
        role_receive(args)
        return 0

    results: dict[str, list] = {"transport": [], "node": []}
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        if args.only in (None, "transport"):
            print(f"raw DDS, {WIDTH}x{HEIGHT} rgb8 at 10 Hz, publisher process -> receiver process")
            print(f"{'publisher':>12} {'subscriber':>12} {'reliability':>11} {'delivered':>9} {'p50 ms':>7} {'p99 ms':>7}")
            cases = [(t, t, r) for t in ("default", "LARGE_DATA", "shm-profile") for r in ("reliable", "best_effort")]
            cases += [("shm-profile", "default", r) for r in ("reliable", "best_effort")]
            cases += [("default", "shm-profile", "reliable"), ("default", "LARGE_DATA", "reliable")]
            for pub, sub, rel in cases:
                r = transport_case(pub, sub, rel, args.frames, args.domain, tmp)
                results["transport"].append(r)
                print(f"{pub:>12} {sub:>12} {rel:>11} {r['received']:>4}/{r['sent']:<4} "
                      f"{r['p50_ms']:7.1f} {r['p99_ms']:7.1f}", flush=True)
        if args.only in (None, "node"):
            size = tuple(args.input_size)
            print(f"\nnode end to end, {WIDTH}x{HEIGHT} rgb8, network input {size[0]}x{size[1]} "
                  f"(random ddrnet23_slim, cpu); overhead = end-to-end - engine, per frame")
            print("overhead = wait for the busy worker + node work (decode/encode/publish) + the two DDS hops")
            print(f"{'rate':>6} {'transport':>12} {'sent':>4} {'done':>4} {'drop':>4} {'out Hz':>6} "
                  f"{'e2e p50/p99':>13} {'engine p50/p99':>15} {'overhead p50/p99':>17} {'wait p50':>8} "
                  f"{'work p50/p99':>13} {'dds p50/p99':>13} {'growth':>7}")
            for rate in (10.0, 0.0):
                for transport in ("default-node", "shm-profile", "LARGE_DATA"):
                    r = node_case(rate, args.frames, transport, size, args.domain, tmp)
                    results["node"].append(r)
                    label = f"{rate:g} Hz" if rate else "max"
                    print(f"{label:>6} {transport:>12} {r['sent']:>4} {r['processed']:>4} {r['dropped']:>4} "
                          f"{r['output_rate_hz']:6.1f} {r['e2e'][0]:6.1f}/{r['e2e'][1]:<6.1f} "
                          f"{r['engine'][0]:7.1f}/{r['engine'][1]:<7.1f} {r['overhead'][0]:8.1f}/{r['overhead'][1]:<8.1f} "
                          f"{r['slot_wait'][0]:8.1f} {r['node_work'][0]:6.1f}/{r['node_work'][1]:<6.1f} "
                          f"{r['dds'][0]:6.1f}/{r['dds'][1]:<6.1f} {r['latency_growth_ms']:7.1f}", flush=True)
                    if "node_log_tail" in r:
                        print(r["node_log_tail"])
        if args.only in (None, "settings"):
            size = tuple(args.input_size)
            print(f"\nnode process settings, camera on the node profile, 10 Hz, {args.frames} frames each "
                  "(the camera and receiver processes unchanged)")
            print(f"{'setting':>14} {'done':>4} {'drop':>4} {'e2e p50/p99':>13} {'engine p50/p99':>15} "
                  f"{'overhead p50/p99':>17} {'work p50/p99':>13} {'dds p50/p99':>13}")
            results["settings"] = []
            for name, node_env in NODE_SETTINGS.items():
                r = node_case(10.0, args.frames, "shm-profile", size, args.domain, tmp, node_env)
                r["setting"] = name
                results["settings"].append(r)
                print(f"{name:>14} {r['processed']:>4} {r['dropped']:>4} {r['e2e'][0]:6.1f}/{r['e2e'][1]:<6.1f} "
                      f"{r['engine'][0]:7.1f}/{r['engine'][1]:<7.1f} {r['overhead'][0]:8.1f}/{r['overhead'][1]:<8.1f} "
                      f"{r['node_work'][0]:6.1f}/{r['node_work'][1]:<6.1f} {r['dds'][0]:6.1f}/{r['dds'][1]:<6.1f}",
                      flush=True)
                if "node_log_tail" in r:
                    print(r["node_log_tail"])
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
