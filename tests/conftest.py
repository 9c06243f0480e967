# ruff: noqa: I001  (bigmodel_core must load before torch: it sets the OpenMP wait policy)
import os

import bigmodel_core  # noqa: F401  (sets the OpenMP wait policy before torch loads)
import torch

# One intra-op thread per test process: tests start servers and subprocesses beside
# themselves, and oversubscribed OpenMP threads on a small machine slow tiny models 20x.
torch.set_num_threads(int(os.environ.get("BIGMODEL_TEST_THREADS", "1")))
