"""pip metadata for ddrnet_ros (the venv path; colcon builds through CMakeLists.txt instead).

Dependencies live in scripts/requirements.txt (installed by scripts/setup.sh), not here: torch
must stay the pinned CPU build and the ROS 2 wheels come from their own index names.
"""

from setuptools import find_packages, setup

setup(
    name="ddrnet_ros",
    version="0.1.0",
    description="Real-time semantic segmentation with DDRNet for ROS 2",
    python_requires=">=3.10",
    packages=find_packages(include=["ddrnet_ros", "ddrnet_ros.*"]),
    package_data={"ddrnet_ros.resources": ["*.yaml", "*.pt", "*.json"], "ddrnet_ros.ros": ["*.xml"]},
    entry_points={"console_scripts": ["ddrnet-ros = ddrnet_ros.commands:main"]},
    zip_safe=False,
)
