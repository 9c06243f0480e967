"""The math behind the Concepts page, computed the way the formulas on the page say.

Each function in this package evaluates one textbook formula step by step (sum of products for a
convolution, window max or mean for pooling, gate equations for LSTM and GRU cells,
update rules for optimizers) so the page can show every intermediate number. The tests
check every number against PyTorch's own implementation (``F.conv2d``,
``F.max_pool2d``, ``F.avg_pool2d``, ``nn.LSTMCell``, ``nn.GRUCell``, ``torch.optim``).

Conventions follow PyTorch: "convolution" is cross-correlation (the kernel is not
flipped), LSTM gates are ordered (i, f, g, o) and GRU gates (r, z, n) in the weight
matrices. The GRU is shown in the textbook convention ``h_t = (1 - z_t) h_{t-1} + z_t h~_t``;
PyTorch's ``z`` is ``1 - z_t`` (see :func:`gru_steps`).

One module a demo: ``convolution``, ``pooling``, ``cells`` (LSTM and GRU), ``optimizers`` (paths on
a 2-D loss surface) and ``examples`` (example images); the names are re-exported here. Pure
numpy/torch: no streamlit here.
"""

from .cells import (
    CellWeights,
    GRUStep,
    LSTMStep,
    check_cell,
    gru_steps,
    lstm_steps,
    random_cell,
)
from .convolution import (
    KERNEL_PRESETS,
    ConvResult,
    Term,
    check_conv,
    conv2d,
    conv_terms,
    kernel_preset,
    output_size,
)
from .examples import (
    EXAMPLE_SOURCES,
    example_images,
)
from .optimizers import (
    ADAGRAD_EPS,
    ADAM_BETAS,
    ADAM_EPS,
    ADAMW_DECAY,
    DIVERGED,
    OPTIMIZER_LABELS,
    OPTIMIZER_NAMES,
    RMSPROP_ALPHA,
    RMSPROP_EPS,
    STEP_TOLERANCE,
    SURFACES,
    GradFn,
    OptimizerPath,
    RuleState,
    Surface,
    TorchFn,
    formula_path,
    gradient_noise,
    optimizer_path,
    paths_with_check,
    step_errors,
    surface,
    surface_grid,
    torch_optimizer,
    update_rule,
)
from .pooling import (
    PoolKind,
    PoolResult,
    check_pool,
    pool2d,
    pool_window,
)

__all__ = [
    "ADAGRAD_EPS",
    "ADAM_BETAS",
    "ADAM_EPS",
    "ADAMW_DECAY",
    "RuleState",
    "STEP_TOLERANCE",
    "step_errors",
    "update_rule",
    "CellWeights",
    "ConvResult",
    "DIVERGED",
    "EXAMPLE_SOURCES",
    "GRUStep",
    "GradFn",
    "KERNEL_PRESETS",
    "LSTMStep",
    "OPTIMIZER_LABELS",
    "OPTIMIZER_NAMES",
    "OptimizerPath",
    "PoolKind",
    "PoolResult",
    "RMSPROP_ALPHA",
    "RMSPROP_EPS",
    "SURFACES",
    "Surface",
    "Term",
    "TorchFn",
    "check_cell",
    "check_conv",
    "check_pool",
    "conv2d",
    "conv_terms",
    "example_images",
    "formula_path",
    "gradient_noise",
    "gru_steps",
    "kernel_preset",
    "lstm_steps",
    "optimizer_path",
    "output_size",
    "paths_with_check",
    "pool2d",
    "pool_window",
    "random_cell",
    "surface",
    "surface_grid",
    "torch_optimizer",
]
