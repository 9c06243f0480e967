"""bigmodel_core: the playground's PyTorch engine (configs, data, models, training, runs).

It never imports streamlit; the app in app_pages/ and ui/ is a thin layer over it.
"""

from .deferred import defer_dynamo

# How idle OpenMP threads wait is the entry point's choice (bigmodel_core.openmp): the app server
# asks for passive waiting before torch loads; the command line keeps libgomp's default.

# torch.compile's tracer (torch._dynamo, with SymPy: about 70 MB and 2 s) is imported by every
# torch.optim optimizer on its first step, though nothing here compiles: it is loaded only if
# something really uses it (see bigmodel_core.deferred).
defer_dynamo()

__version__ = "0.1.0"
