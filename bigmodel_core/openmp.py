"""How idle OpenMP threads wait, chosen by what the process is for.

PyTorch's CPU kernels run on a team of OpenMP threads (GNU libgomp in the pip builds). Between two
operations a thread of the team waits for the next one, and libgomp's default is to spin for a
while before it sleeps. The two kinds of process that train here want opposite things:

- A process that trains alone (the command line, ``bench``, an exported script) wants the
  default. The small networks of the playground run thousands of short operations a
  second, and a sleeping thread takes longer to wake than many of them last: on the 2-core
  development machine, quickstart_cnn trained at 1.6-1.8x the samples per second with the default
  as with passive waiting, and the channels_last format only gains its full margin with it.
- A server that trains beside the web server, the pages' drawing and other learners' jobs
  (``streamlit run app.py``) wants passive waiting (``OMP_WAIT_POLICY=PASSIVE``): a spinning thread
  holds a core that another thread needs, and a 2-thread training on a busy 2-core machine ran
  about 10x slower with spinning threads than with sleeping ones.

libgomp reads the setting once, when torch loads it, so :func:`wait_passively` must run before
anything imports torch. An ``OMP_WAIT_POLICY`` already in the environment is left as it is.

No torch here: this module is imported before it.
"""

from __future__ import annotations

import os
import sys

VARIABLE = "OMP_WAIT_POLICY"


def wait_passively() -> bool:
    """Let idle OpenMP threads sleep instead of spinning (for a process that serves pages and trains).

    Returns whether the process runs with passive waiting: False when torch was already loaded
    without it (too late to change) or the environment asks for another policy.
    """
    if "torch" not in sys.modules:
        os.environ.setdefault(VARIABLE, "PASSIVE")
    return os.environ.get(VARIABLE, "").strip().upper() == "PASSIVE"
