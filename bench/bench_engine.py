"""Engine throughput as a ratio to a minimal hand-written PyTorch loop (same model, data, batch, threads).

Run: ``python bench/bench_engine.py`` (the same as ``python -m bigmodel_core bench``).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bigmodel_core.cli import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main(["bench", *sys.argv[1:]]))
