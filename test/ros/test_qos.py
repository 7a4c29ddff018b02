"""The node's QoS decisions: input reliability under ``auto`` and when its Fast DDS profile applies."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from rclpy.qos import ReliabilityPolicy

from ddrnet_ros.ros.qos import FASTDDS_PROFILE, resolve_input_reliability, use_large_image_transport

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


def test_the_fastdds_profile_applies_only_where_the_user_chose_no_transport():
    environ: dict[str, str] = {}
    assert use_large_image_transport(environ) and environ["FASTDDS_DEFAULT_PROFILES_FILE"] == str(FASTDDS_PROFILE)
    for chosen in ({"FASTDDS_DEFAULT_PROFILES_FILE": "/mine.xml"}, {"FASTDDS_BUILTIN_TRANSPORTS": "LARGE_DATA"},
                   {"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"}):
        environ = dict(chosen)
        assert not use_large_image_transport(environ) and environ == chosen


def test_the_fastdds_profile_is_shipped_and_sizes_shared_memory_for_large_images():
    ns = {"d": "http://www.eprosima.com"}
    root = ET.parse(FASTDDS_PROFILE).getroot()
    segment = int(root.find(".//d:transport_descriptor[d:type='SHM']/d:segment_size", ns).text)
    assert segment >= 3 * 2048 * 1024 * 3  # several 2048x1024 rgb8 samples fit
    assert root.find(".//d:transport_descriptor[d:type='UDPv4']", ns) is not None  # default peers still match
