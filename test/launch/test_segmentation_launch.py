"""launch/segmentation.launch.py under the real ROS 2 launch stack (launch_pytest).

Skipped where launch_pytest is not installed (it is not on PyPI): `make test-launch` builds the
launch stack into .overlay/ and runs these for real. test/ros/test_node_process.py covers the same
behaviour without launch (the installed executable with the params file).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

launch_pytest = pytest.importorskip(
    "launch_pytest", reason="launch_pytest (ROS 2 launch stack) is not installed; `make test-launch` runs this")

import numpy as np  # noqa: E402
from ament_index_python.packages import get_package_share_directory  # noqa: E402
from launch.actions import IncludeLaunchDescription, RegisterEventHandler  # noqa: E402
from launch.event_handlers import OnProcessExit  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402

from launch import LaunchDescription  # noqa: E402

LAUNCH_FILE = Path(get_package_share_directory("ddrnet_ros")) / "launch" / "segmentation.launch.py"
exit_codes: list[int] = []


def installed_launch(**arguments: str) -> LaunchDescription:
    """The installed launch file with a random-weight model on the CPU, these arguments, and the
    node's exit code recorded."""
    exit_codes.clear()
    return LaunchDescription([
        IncludeLaunchDescription(PythonLaunchDescriptionSource(str(LAUNCH_FILE)),
                                 launch_arguments={"checkpoint": "random", "device": "cpu", **arguments}.items()),
        RegisterEventHandler(OnProcessExit(on_exit=lambda event, context: exit_codes.append(event.returncode))),
        launch_pytest.actions.ReadyToTest(),
    ])


@launch_pytest.fixture
def segmentation_launch():
    """A remapped camera topic, autostart."""
    return installed_launch(camera_topic="/launch_test/image")


@pytest.mark.launch(fixture=segmentation_launch)
def test_launch_file_starts_a_node_that_labels_a_published_image_and_shuts_down_cleanly():
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import Image

    from ddrnet_ros.encodings import encode_image

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=int(os.environ["ROS_DOMAIN_ID"]))
    node = rclpy.create_node("launch_probe", context=context)
    labels: list[Image] = []
    node.create_subscription(Image, "/segmentation/labels", labels.append, 10)
    camera = node.create_publisher(Image, "/launch_test/image", 10)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        data, step = encode_image(np.full((48, 64, 3), 90, np.uint8), "rgb8")
        msg = Image(height=48, width=64, encoding="rgb8", step=step, data=data)
        msg.header.frame_id = "launch_camera"
        deadline = time.monotonic() + 60
        while not labels and time.monotonic() < deadline:
            if camera.get_subscription_count():
                camera.publish(msg)
            time.sleep(0.2)
        assert labels, "no labels from the launched node within 60 s"
        assert (labels[0].header.frame_id, labels[0].height, labels[0].width) == ("launch_camera", 48, 64)
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
    yield
    assert exit_codes == [0], f"node exit codes after launch shutdown: {exit_codes}"


@launch_pytest.fixture
def waiting_launch():
    """autostart:=false: the node waits unconfigured for lifecycle commands."""
    return installed_launch(autostart="false", namespace="waiting")


@pytest.mark.launch(fixture=waiting_launch)
def test_without_autostart_the_launched_lifecycle_node_waits_unconfigured_until_told():
    import rclpy
    from lifecycle_msgs.msg import State, Transition
    from lifecycle_msgs.srv import ChangeState, GetState
    from rclpy.executors import SingleThreadedExecutor

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=int(os.environ["ROS_DOMAIN_ID"]))
    node = rclpy.create_node("lifecycle_probe", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    get_state = node.create_client(GetState, "/waiting/segmentation_node/get_state")
    change_state = node.create_client(ChangeState, "/waiting/segmentation_node/change_state")
    try:
        assert get_state.wait_for_service(timeout_sec=60), "no lifecycle services within 60 s"

        def call(client, request):
            future = client.call_async(request)
            executor.spin_until_future_complete(future, timeout_sec=120)
            return future.result()

        assert call(get_state, GetState.Request()).current_state.id == State.PRIMARY_STATE_UNCONFIGURED
        for transition in (Transition.TRANSITION_CONFIGURE, Transition.TRANSITION_ACTIVATE):
            assert call(change_state, ChangeState.Request(transition=Transition(id=transition))).success
        assert call(get_state, GetState.Request()).current_state.id == State.PRIMARY_STATE_ACTIVE
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
    yield
    assert exit_codes == [0], f"node exit codes after launch shutdown: {exit_codes}"
