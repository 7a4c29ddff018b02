"""The node's QoS decisions: input reliability under ``auto`` and when its Fast DDS profile applies."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from rclpy.qos import ReliabilityPolicy

from ddrnet_ros.ros.qos import (
    FASTDDS_PROFILE,
    profile_segment_bytes,
    resolve_input_reliability,
    use_large_image_transport,
)

RELIABLE, BEST_EFFORT = ReliabilityPolicy.RELIABLE, ReliabilityPolicy.BEST_EFFORT


def test_auto_input_reliability_follows_the_publishers():
    assert resolve_input_reliability("auto", []) == RELIABLE  # nobody yet: reliable, switch when one appears
    assert resolve_input_reliability("auto", [RELIABLE]) == RELIABLE
    assert resolve_input_reliability("auto", [BEST_EFFORT]) == BEST_EFFORT
    assert resolve_input_reliability("auto", [BEST_EFFORT, BEST_EFFORT]) == BEST_EFFORT
    assert resolve_input_reliability("auto", [BEST_EFFORT, RELIABLE]) == RELIABLE


def test_a_forced_input_reliability_ignores_the_publishers():
    assert resolve_input_reliability("reliable", [BEST_EFFORT]) == RELIABLE
    assert resolve_input_reliability("best_effort", [RELIABLE]) == BEST_EFFORT


PLENTY = 2**30  # free bytes of a roomy /dev/shm


def test_the_fastdds_profile_applies_only_where_the_user_chose_no_transport():
    environ: dict[str, str] = {}
    choice = use_large_image_transport(environ, shm_free=PLENTY)
    assert choice.used and environ["FASTDDS_DEFAULT_PROFILES_FILE"] == str(FASTDDS_PROFILE)
    assert "DDRNET_ROS_LARGE_IMAGE_TRANSPORT=0" in choice.message  # says how to turn it off
    for chosen in ({"FASTDDS_DEFAULT_PROFILES_FILE": "/mine.xml"}, {"FASTDDS_BUILTIN_TRANSPORTS": "LARGE_DATA"},
                   {"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"}, {"DDRNET_ROS_LARGE_IMAGE_TRANSPORT": "0"}):
        environ = dict(chosen)
        choice = use_large_image_transport(environ, shm_free=PLENTY)
        assert not choice.used and environ == chosen and choice.message.startswith("transport: ")


def test_a_small_dev_shm_keeps_fastdds_defaults_and_says_so_in_one_line():
    environ: dict[str, str] = {}
    segment = profile_segment_bytes()
    choice = use_large_image_transport(environ, shm_free=segment)  # e.g. Docker's 64 MB with a peer in it
    assert not choice.used and "FASTDDS_DEFAULT_PROFILES_FILE" not in environ
    assert "/dev/shm has 32 MiB free" in choice.message and "--shm-size" in choice.message
    assert "\n" not in choice.message
    assert use_large_image_transport({}, shm_free=2 * segment).used


def test_the_fastdds_profile_is_shipped_and_sizes_shared_memory_for_large_images():
    ns = {"d": "http://www.eprosima.com"}
    root = ET.parse(FASTDDS_PROFILE).getroot()
    segment = int(root.find(".//d:transport_descriptor[d:type='SHM']/d:segment_size", ns).text)
    assert segment >= 3 * 2048 * 1024 * 3  # several 2048x1024 rgb8 samples fit
    assert root.find(".//d:transport_descriptor[d:type='UDPv4']", ns) is not None  # default peers still match


def test_the_fastdds_profile_announces_a_short_participant_lease():
    """Peers drop a dead process that loaded the profile (a killed viewer) after its lease: 3 s, not
    Fast DDS's 20 s; announced three times per lease, so one lost announcement is not a death."""
    ns = {"d": "http://www.eprosima.com"}
    discovery = ET.parse(FASTDDS_PROFILE).getroot().find(".//d:participant/d:rtps/d:builtin/d:discovery_config", ns)
    lease = float(discovery.find("d:leaseDuration/d:sec", ns).text)
    announcement = float(discovery.find("d:leaseAnnouncement/d:sec", ns).text)
    assert lease <= 3 and announcement <= lease / 3
