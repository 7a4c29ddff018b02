"""Lifecycle failures are loud: a callback that raises is reported (rclpy alone says nothing), and an
engine fault takes the node to finalized and exits 1 instead of dropping every frame."""

import time

#: Seconds the node has to fail after the first frame it gets.
WAIT_S = 30.0

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


#: The node as ``segmentation_node`` runs it, with a device that breaks on the first frame: the
#: segmenter raises the engine's CudaFault (what a sticky CUDA error becomes), chained to the kind
#: of error torch raises. The CUDA path itself cannot run on a CPU-only machine; this injects its
#: failure where the node meets it.
BROKEN_DEVICE_NODE = r"""
import sys
from ddrnet_ros.engine.backends.torch_backend import CudaFault
from ddrnet_ros.engine.segmenter import Segmenter

def broken_device(self, *args, **kwargs):
    raise CudaFault("CUDA fault during inference: illegal memory access") from RuntimeError("CUDA error")

Segmenter.segment = broken_device
from ddrnet_ros.ros.node import spin_node
sys.exit(spin_node(["segmentation_node", "--ros-args", "-p", "checkpoint:=random", "-p", "device:=cpu"]))
"""


def test_an_engine_fault_fails_the_node_loudly_finalizes_it_and_exits_1(harness, spawn_python, make_image,
                                                                         make_image_msg):
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
    from sensor_msgs.msg import Image

    diagnostics = harness.collect(DiagnosticArray, "/diagnostics")
    node = spawn_python(BROKEN_DEVICE_NODE)
    camera = harness.publisher(Image, "camera/image_raw")
    harness.wait_matched(camera)
    frame = make_image_msg(make_image(64, 96))
    deadline = time.monotonic() + WAIT_S
    while node.poll() is None and time.monotonic() < deadline:  # frames until the node has gone
        camera.publish(frame)
        time.sleep(0.1)
    out, err = node.communicate(timeout=10)
    assert node.returncode == 1, f"exit {node.returncode}\n{err}"
    assert "engine fault, stopping the node: CUDA fault during inference: illegal memory access" in err
    assert "finalized after an engine fault" in err
    assert err.count("engine fault, stopping the node") == 1, "one fault, one ERROR: no frame after it"
    harness.wait_for(lambda: any(s.level == DiagnosticStatus.ERROR and "engine fault" in s.message
                                 for a in diagnostics for s in a.status), "ERROR diagnostics naming the fault")
