"""Thin ROS 2 adapters around the ROS-free core: the segmentation node and its plumbing.

Only this package imports rclpy; pixels and inference live in ddrnet_ros.encodings and
ddrnet_ros.engine.
"""
