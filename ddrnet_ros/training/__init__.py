"""Training (ROS-free): data, losses, schedule, validation, checkpointing and the loop.

``train(args)`` runs one training described by ``ddrnet-ros train``'s arguments
(:mod:`ddrnet_ros.commands.train`); the pieces are importable on their own.
"""

from .checkpointing import RESUME_FILE, RunState, load_resume, save_resume
from .errors import TrainingError
from .loop import Trainer, train

__all__ = ["RESUME_FILE", "RunState", "Trainer", "TrainingError", "load_resume", "save_resume", "train"]
