"""The one home of the node's QoS profiles.

Inputs default to ``auto``: the subscription takes the reliability of the publishers it finds
(as rosbag2 does), because a best-effort subscriber receives almost nothing of a large image
from an ordinary reliable publisher here (each frame is dozens of DDS fragments and one lost
fragment loses the frame), while a reliable subscriber receives nothing at all from a
best-effort publisher (incompatible QoS). ``best_effort`` is the sensor-data reliability, for
drivers that publish that way. Outputs are reliable keep-last by default. The label info
is latched (transient local) so that late subscribers still get it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass
from pathlib import Path

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

#: Values of the ``input_qos`` parameter.
INPUT_QOS_CHOICES = ("auto", "reliable", "best_effort")
#: Values of the ``output_qos`` parameter.
OUTPUT_QOS_CHOICES = ("reliable", "best_effort")

#: Input history depth: the node keeps only the newest frame anyway (latest-frame slot), so a
#: deeper reader queue would only hold frames that are dropped unseen.
INPUT_DEPTH = 1


def _keep_last(depth: int, reliability: ReliabilityPolicy) -> QoSProfile:
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=reliability,
                      durability=DurabilityPolicy.VOLATILE)


def input_profile(reliability: ReliabilityPolicy) -> QoSProfile:
    """Image subscription profile of the given reliability (keep last 1, volatile)."""
    return _keep_last(INPUT_DEPTH, reliability)


def resolve_input_reliability(setting: str, publisher_reliabilities: Iterable[ReliabilityPolicy]
                              ) -> ReliabilityPolicy:
    """The reliability an image subscription should use.

    ``auto`` follows the publishers: reliable if any publisher is reliable or if none is known
    yet (a later best-effort publisher is caught by the incompatible-QoS event), best effort
    only when every publisher is best effort.
    """
    if setting == "reliable":
        return ReliabilityPolicy.RELIABLE
    if setting == "best_effort":
        return ReliabilityPolicy.BEST_EFFORT
    found = list(publisher_reliabilities)
    if found and all(r == ReliabilityPolicy.BEST_EFFORT for r in found):
        return ReliabilityPolicy.BEST_EFFORT
    return ReliabilityPolicy.RELIABLE


def output_profile(setting: str, depth: int) -> QoSProfile:
    """Labels/color/overlay/confidence publisher profile."""
    reliability = ReliabilityPolicy.RELIABLE if setting == "reliable" else ReliabilityPolicy.BEST_EFFORT
    return _keep_last(depth, reliability)


#: /segmentation/label_info: latched, so a subscriber that starts later still gets it.
LABEL_INFO = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.TRANSIENT_LOCAL)

#: /diagnostics, as diagnostic_updater publishes it.
DIAGNOSTICS = _keep_last(10, ReliabilityPolicy.RELIABLE)


#: Fast DDS profile with a shared-memory segment large enough for whole camera images, and a 3 s
#: participant lease: peers drop a dead process that loaded it within ~3 s instead of 20 s (see
#: ddrnet_ros.ros.readers for why that matters to the node's lazy outputs).
FASTDDS_PROFILE = Path(__file__).with_name("fastdds_large_images.xml")


#: Set to 0 to keep Fast DDS's own defaults (the node then never loads its profile).
OPT_OUT_VARIABLE = "DDRNET_ROS_LARGE_IMAGE_TRANSPORT"
SHM_DIR = Path("/dev/shm")
#: The profile's segment for the node's participant, plus as much again for its peers' ports.
SHM_HEADROOM = 2


def profile_segment_bytes(profile: Path = FASTDDS_PROFILE) -> int:
    """The shared-memory segment size the profile asks Fast DDS for."""
    match = re.search(r"<segment_size>(\d+)</segment_size>", profile.read_text())
    return int(match.group(1)) if match else 0


def shm_free_bytes(directory: Path = SHM_DIR) -> int | None:
    """Free bytes of the shared-memory filesystem, or None where there is none to ask."""
    try:
        stats = os.statvfs(directory)
    except OSError:
        return None
    return stats.f_bavail * stats.f_frsize


@dataclass(frozen=True)
class TransportChoice:
    """Whether the node uses its large-image Fast DDS profile, and the one log line that says why."""

    used: bool
    message: str


def use_large_image_transport(environ: MutableMapping[str, str], shm_free: int | None = None) -> TransportChoice:
    """Point Fast DDS at :data:`FASTDDS_PROFILE` unless the user chose a transport or another RMW,
    opted out, or /dev/shm cannot hold its segment (Docker's default 64 MB can't, with peers).

    Must run before ``rclpy.init`` (the participant reads it once). ``shm_free`` overrides the
    measured free bytes of /dev/shm (tests).
    """
    chosen = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTDDS_BUILTIN_TRANSPORTS")
    if any(environ.get(name) for name in chosen):
        return TransportChoice(False, "transport: the environment's Fast DDS settings "
                                      f"({', '.join(n for n in chosen if environ.get(n))})")
    if environ.get("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp") not in ("", "rmw_fastrtps_cpp"):
        return TransportChoice(False, f"transport: {environ['RMW_IMPLEMENTATION']}'s defaults")
    if environ.get(OPT_OUT_VARIABLE, "1") in ("0", "false", "no"):
        return TransportChoice(False, f"transport: Fast DDS defaults ({OPT_OUT_VARIABLE}=0)")
    needed = SHM_HEADROOM * profile_segment_bytes()
    free = shm_free_bytes() if shm_free is None else shm_free
    if free is not None and free < needed:
        return TransportChoice(False, f"transport: Fast DDS defaults, not the large-image profile: {SHM_DIR} has "
                                      f"{free / 2**20:.0f} MiB free, the profile needs {needed / 2**20:.0f} MiB "
                                      "(Docker: --shm-size=256m); large images then cross slower")
    environ["FASTDDS_DEFAULT_PROFILES_FILE"] = str(FASTDDS_PROFILE)
    return TransportChoice(True, f"transport: Fast DDS profile {FASTDDS_PROFILE.name} (shared memory sized for "
                                 f"large images, {profile_segment_bytes() / 2**20:.0f} MiB segment); "
                                 f"{OPT_OUT_VARIABLE}=0 keeps Fast DDS defaults; give camera drivers the same "
                                 "FASTDDS_DEFAULT_PROFILES_FILE for the fast path")
