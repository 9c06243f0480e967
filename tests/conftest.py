# ruff: noqa: I001, E402  (the OpenMP wait policy must be set before torch loads)
import os

from bigmodel_core.openmp import wait_passively

# tests train beside the servers and browsers they start, as the app server trains beside its pages
wait_passively()

import torch

# One intra-op thread per test process: tests start servers and subprocesses beside
# themselves, and oversubscribed OpenMP threads on a small machine slow tiny models 20x.
torch.set_num_threads(int(os.environ.get("BIGMODEL_TEST_THREADS", "1")))
