"""AppTest runs page scripts in this process: give them a private run store."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("BIGMODEL_RUNS_DIR", tempfile.mkdtemp(prefix="bigmodel-apptest-runs-"))
