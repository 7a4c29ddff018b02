"""A lifecycle callback that raises is reported, not swallowed (rclpy alone says nothing)."""

CODE = r"""
import rclpy
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from ddrnet_ros.ros.node import logged_transition

class Broken(LifecycleNode):
    @logged_transition
    def on_configure(self, state):
        raise RuntimeError("publisher set-up exploded")

rclpy.init()
node = Broken("broken_node")
outcome = node.trigger_configure()
print("outcome", outcome.name, flush=True)
node.destroy_node()
rclpy.shutdown()
"""


def test_exception_in_lifecycle_callback_is_logged_with_its_reason(run_python):
    done = run_python(CODE)
    assert "outcome ERROR" in done.stdout
    assert "on_configure raised RuntimeError: publisher set-up exploded" in done.stderr
    assert "Traceback" in done.stderr
