"""Start the ddrnet_ros segmentation node (a lifecycle node).

    ros2 launch ddrnet_ros segmentation.launch.py camera_topic:=/front/image_raw device:=cuda
    ros2 launch ddrnet_ros segmentation.launch.py autostart:=false   # then: ros2 lifecycle set ...

Arguments left empty keep the params file's value; camera_topic remaps the default camera's
``camera/image_raw`` input (multi-camera setups name their topics in the params file).
``autostart`` (default true) lets the node configure and activate itself; with false it waits
in ``unconfigured`` for ``ros2 lifecycle set /segmentation_node configure`` (then ``activate``),
as a lifecycle manager would drive it. ``respawn:=true`` restarts the process when it exits:
after an engine fault (a broken GPU context) the node finalizes itself and exits with status 1.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode

from launch import LaunchDescription

TRUE_WORDS = ("true", "1", "yes")
#: Seconds between an exit and the restart with respawn:=true (a crash loop stays slow).
RESPAWN_DELAY_S = 2.0


def _node(context):
    def arg(name):
        return LaunchConfiguration(name).perform(context)

    overrides = {"use_sim_time": arg("use_sim_time").lower() in TRUE_WORDS,
                 "autostart": arg("autostart").lower() in TRUE_WORDS}
    for name in ("checkpoint", "device"):
        if arg(name):
            overrides[name] = arg(name)
    return [LifecycleNode(
        package="ddrnet_ros",
        executable="segmentation_node",
        name="segmentation_node",
        namespace=arg("namespace"),
        parameters=[arg("params_file"), overrides],
        remappings=[("camera/image_raw", arg("camera_topic"))],
        ros_arguments=["--log-level", arg("log_level")],
        output="screen",
        emulate_tty=True,
        respawn=arg("respawn").lower() in TRUE_WORDS,
        respawn_delay=RESPAWN_DELAY_S,
    )]


def generate_launch_description():
    default_params = os.path.join(get_package_share_directory("ddrnet_ros"), "config", "segmentation.yaml")
    return LaunchDescription([
        DeclareLaunchArgument("params_file", default_value=default_params,
                              description="ROS params file of the node"),
        DeclareLaunchArgument("camera_topic", default_value="camera/image_raw",
                              description="image topic of the default single camera"),
        DeclareLaunchArgument("checkpoint", default_value="",
                              description="a checkpoint file, shipped or random (empty: the params file's value)"),
        DeclareLaunchArgument("device", default_value="",
                              description="auto, cpu, cuda or cuda:N (empty: the params file's value)"),
        DeclareLaunchArgument("autostart", default_value="true",
                              description="configure and activate at start (false: wait for lifecycle commands)"),
        DeclareLaunchArgument("namespace", default_value="", description="namespace of the node and its topics"),
        DeclareLaunchArgument("use_sim_time", default_value="false", description="follow /clock (bag replay)"),
        DeclareLaunchArgument("respawn", default_value="false",
                              description="restart the node when it exits (it exits 1 after an engine fault)"),
        DeclareLaunchArgument("log_level", default_value="info", description="debug, info, warn, error"),
        OpaqueFunction(function=_node),
    ])
