"""retrograd.nn: Modules, Parameters and layers (thin Modules over nn.functional)."""

from retrograd.nn import functional, init, utils  # noqa: F401

# --- module system ---
from retrograd.nn.container import (  # noqa: F401
    ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential,
)
from retrograd.nn.linear import Flatten, Identity, Linear, Unflatten  # noqa: F401
from retrograd.nn.module import Module  # noqa: F401
from retrograd.nn.parameter import Parameter  # noqa: F401
# --- conv and pooling layers ---
from retrograd.nn.conv import Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d  # noqa: F401
# --- spatial: padding, upsampling, pixel shuffle, channel dropout ---
from retrograd.nn.dropout import Dropout1d, Dropout2d, Dropout3d  # noqa: F401
from retrograd.nn.padding import (  # noqa: F401
    CircularPad1d, CircularPad2d, CircularPad3d, ConstantPad1d, ConstantPad2d, ConstantPad3d,
    ReflectionPad1d, ReflectionPad2d, ReflectionPad3d, ReplicationPad1d, ReplicationPad2d,
    ReplicationPad3d, ZeroPad1d, ZeroPad2d, ZeroPad3d,
)
from retrograd.nn.pixelshuffle import PixelShuffle, PixelUnshuffle  # noqa: F401
from retrograd.nn.upsampling import Upsample, UpsamplingBilinear2d, UpsamplingNearest2d  # noqa: F401
from retrograd.nn.pooling import (  # noqa: F401
    AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveMaxPool1d, AdaptiveMaxPool2d, AvgPool1d,
    AvgPool2d, LPPool1d, LPPool2d, MaxPool1d, MaxPool2d, MaxUnpool1d, MaxUnpool2d,
)
from retrograd.nn.channelshuffle import ChannelShuffle  # noqa: F401
from retrograd.nn.fold import Fold, Unfold  # noqa: F401
# --- activations, dropout, normalization, loss layers ---
from retrograd.nn.activation import (  # noqa: F401
    ELU, GELU, Hardtanh, LeakyReLU, LogSigmoid, LogSoftmax, Mish, PReLU, ReLU, ReLU6, Sigmoid,
    SiLU, Softmax, Softplus, Tanh,
)
from retrograd.nn.activation import (  # noqa: F401 - the activation tail
    CELU, GLU, SELU, Hardshrink, Hardsigmoid, Hardswish, Softmin, Softshrink, Softsign,
    Tanhshrink, Threshold,
)
from retrograd.nn.dropout import Dropout  # noqa: F401
from retrograd.nn.loss import (  # noqa: F401
    BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, KLDivLoss, L1Loss, MSELoss, NLLLoss,
    SmoothL1Loss,
)
from retrograd.nn.loss import (  # noqa: F401 - the loss tail
    CosineEmbeddingLoss, GaussianNLLLoss, HingeEmbeddingLoss, MarginRankingLoss,
    MultiLabelSoftMarginLoss, MultiMarginLoss, PoissonNLLLoss, SoftMarginLoss, TripletMarginLoss,
)
from retrograd.nn.distance import CosineSimilarity, PairwiseDistance  # noqa: F401
from retrograd.nn.bilinear import Bilinear  # noqa: F401
from retrograd.nn.normalization import (  # noqa: F401
    BatchNorm1d, BatchNorm2d, BatchNorm3d, GroupNorm, InstanceNorm1d, InstanceNorm2d,
    InstanceNorm3d, LayerNorm, LocalResponseNorm, RMSNorm,
)
from retrograd.nn.sync_batchnorm import SyncBatchNorm  # noqa: F401
# --- embeddings and recurrent ---
from retrograd.nn.embedding import (  # noqa: F401
    Embedding, LearnedPositionalEmbedding, RotaryEmbedding, SinusoidalPositionalEncoding,
)
from retrograd.nn.embedding_bag import EmbeddingBag  # noqa: F401
from retrograd.nn.rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell  # noqa: F401
# --- attention and transformer ---
from retrograd.nn.attention import MultiheadAttention  # noqa: F401
from retrograd.nn.transformer import (  # noqa: F401
    Transformer, TransformerDecoder, TransformerDecoderLayer, TransformerEncoder,
    TransformerEncoderLayer, generate_square_subsequent_mask,
)
# --- parallel wrappers ---
from retrograd.nn import parallel  # noqa: F401, E402
from retrograd.nn.parallel import DataParallel  # noqa: F401, E402
