"""Look inside a model while it trains: feature maps, filters, RNN states and gates, gradients, errors.

This package owns every measurement the Train page's "inspect" area shows:

- CNN: the feature maps of every conv block after its activation and after its pooling
  (forward hooks on a copy, removed afterwards, like timm's ``FeatureHooks``), the
  first layer's filters and the class probabilities for one validation input.
- RNN/LSTM/GRU: the hidden state, the LSTM cell state and the gate activations over time,
  recomputed from each layer's own weights by the textbook equations (tests check them
  against ``nn.LSTM``/``nn.GRU``), and the gradient of the loss with respect to the hidden
  state at every step (how far back the training signal reaches).
- Any model: per-layer gradient norms over training (from ``Trainer.grad_norms``), weight
  histograms at the start and now, and the confusion matrix with the most confidently
  wrong validation examples (or predictions against targets for regression).

Probing never changes training: it works on a deep copy of the weights in eval mode,
under ``no_grad`` except for the hidden-state gradient (autograd on the copy only), and
draws nothing from the global random generators. Large layers are capped (``MAX_MAPS``
maps or units, ``MAX_STEPS`` time steps) so a big model cannot freeze the browser; a note
says what was left out. Anything that does not apply (feature maps of an LSTM, a
confusion matrix for regression) becomes a note, not an error.

Integration: ``Job(make_trainer=make_trainer, epoch_hooks=[epoch_hook])`` stores a
:class:`ProbeResult` in ``job.extras["probes"]`` after every epoch; :func:`compute_probes`
and :func:`probes_for_run` compute the same on demand from a model or a stored run.

One module a job: ``results`` (the result types, caps and ProbeError), ``common`` (the probe
copy and small helpers), ``maps`` (CNN), ``gates`` (RNN/LSTM/GRU), ``predictions`` (confusion
matrix, regression), ``weights`` (histograms), ``collect`` (everything together, and the
training hooks), ``frames`` (tables for CSV download). The names are re-exported here:
``from bigmodel_core.inspect import probes; probes.compute_probes(...)``.
"""

from .collect import (
    ProbeRecorder,
    attach,
    compute_probes,
    epoch_hook,
    make_trainer,
    probes_for_run,
    probes_for_trainer,
    request_index,
)
from .common import (
    examples_per_class,
    layer_labels,
    probe_copy,
)
from .frames import (
    confusion_frame,
    filters_frame,
    grad_norms_frame,
    hidden_grads_frame,
    maps_frame,
    probabilities_frame,
    regression_frame,
    trace_frame,
    weights_frame,
    wrong_frame,
)
from .gates import (
    DirectionStates,
    hidden_state_gradients,
    probe_sequence,
    recompute_rnn,
    rnn_states,
)
from .maps import (
    feature_maps,
    first_filters,
    probe_cnn,
)
from .predictions import (
    confusion,
    regression,
    validation_outputs,
)
from .results import (
    GATE_NAMES,
    GRAD_EVERY,
    HIDDEN_GRAD_BATCH,
    HIST_BINS,
    HIST_SAMPLE,
    MAX_MAPS,
    MAX_POINTS,
    MAX_STEPS,
    MAX_WRONG,
    PROBE_REQUEST,
    PROBES,
    CNNProbe,
    Confusion,
    FeatureMaps,
    ProbeError,
    ProbeResult,
    Regression,
    RNNTrace,
    SequenceProbe,
    WeightHistogram,
    WrongExample,
)
from .weights import (
    weight_histograms,
    weight_samples,
)

__all__ = [
    "CNNProbe",
    "Confusion",
    "DirectionStates",
    "FeatureMaps",
    "GATE_NAMES",
    "GRAD_EVERY",
    "HIDDEN_GRAD_BATCH",
    "HIST_BINS",
    "HIST_SAMPLE",
    "MAX_MAPS",
    "MAX_POINTS",
    "MAX_STEPS",
    "MAX_WRONG",
    "PROBES",
    "PROBE_REQUEST",
    "ProbeError",
    "ProbeRecorder",
    "ProbeResult",
    "RNNTrace",
    "Regression",
    "SequenceProbe",
    "WeightHistogram",
    "WrongExample",
    "attach",
    "compute_probes",
    "confusion",
    "confusion_frame",
    "epoch_hook",
    "examples_per_class",
    "feature_maps",
    "filters_frame",
    "first_filters",
    "grad_norms_frame",
    "hidden_grads_frame",
    "hidden_state_gradients",
    "layer_labels",
    "make_trainer",
    "maps_frame",
    "probabilities_frame",
    "probe_cnn",
    "probe_copy",
    "probe_sequence",
    "probes_for_run",
    "probes_for_trainer",
    "recompute_rnn",
    "regression",
    "regression_frame",
    "request_index",
    "rnn_states",
    "trace_frame",
    "validation_outputs",
    "weight_histograms",
    "weight_samples",
    "weights_frame",
    "wrong_frame",
]
