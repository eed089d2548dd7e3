"""Training jobs behind ``retrograd train``: image classification (the main job), the
character-level language model (``--model gpt``) and the algorithmic sequence tasks
(``--model seq2seq``)."""

from retrograd.training.image import DATA_DEFAULTS, TrainConfig, evaluate, load_image_data, train
from retrograd.training.language_model import LMConfig, sample
from retrograd.training.language_model import train as train_language_model
from retrograd.training.sequence import SeqConfig, exact_match
from retrograd.training.sequence import train as train_sequence

__all__ = ["TrainConfig", "train", "evaluate", "load_image_data", "DATA_DEFAULTS", "LMConfig",
           "train_language_model", "sample", "SeqConfig", "train_sequence", "exact_match"]
