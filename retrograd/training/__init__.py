"""Training jobs behind ``retrograd train``: image classification (the main job)."""

from retrograd.training.image import DATA_DEFAULTS, TrainConfig, evaluate, load_image_data, train

__all__ = ["TrainConfig", "train", "evaluate", "load_image_data", "DATA_DEFAULTS"]
