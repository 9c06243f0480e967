import os

import torch

# Keep the suite predictable on small CI machines: one intra-op thread per test process.
torch.set_num_threads(int(os.environ.get("BIGMODEL_TEST_THREADS", "2")))
