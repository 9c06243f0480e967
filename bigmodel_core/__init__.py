"""bigmodel_core: the playground's PyTorch engine (configs, data, models, training, runs).

It never imports streamlit; the app in app_pages/ and ui/ is a thin layer over it.
"""

import os

from .deferred import defer_dynamo

# Idle OpenMP threads sleep instead of spinning. A playground server shares its cores with
# the web server, the browser and other trainings; with spinning threads, a 2-thread job on
# a busy 2-core machine ran 10x slower than with one thread (measured), with passive
# waiting it stays faster. It must be set before torch loads its OpenMP runtime.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# torch.compile's tracer (torch._dynamo, with SymPy: about 70 MB and 2 s) is imported by every
# torch.optim optimizer on its first step, though nothing here compiles: it is loaded only if
# something really uses it (see bigmodel_core.deferred).
defer_dynamo()

__version__ = "0.1.0"
