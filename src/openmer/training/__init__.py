"""Training engine (accelerate): loop, validation-only selection, checkpoints and resume."""

from openmer.training.config import TrainConfig
from openmer.training.engine import TrainResult, evaluate_known, fit

__all__ = ["TrainConfig", "TrainResult", "evaluate_known", "fit"]
