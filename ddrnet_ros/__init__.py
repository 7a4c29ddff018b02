"""ddrnet_ros: real-time semantic segmentation (DDRNet) for ROS 2.

The core (model, engine, classes, encodings, data, metrics) never imports rclpy; the ROS
adapters live in ``ddrnet_ros.ros``.
"""

# The generated message modules (``ddrnet_ros.msg``) are installed by rosidl into another
# site-packages directory; extend_path lets this package span both.
from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)
__version__ = "0.1.0"
