"""The trainer's own error: a problem with the training setup, told in one line."""


class TrainingError(RuntimeError):
    """A user-facing problem with the training setup (one clear line)."""
