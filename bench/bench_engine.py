"""Engine throughput as ratios to a minimal PyTorch loop, as written by hand and with the engine's settings.

Run: ``python -m bench.bench_engine`` (the same as ``python -m bigmodel_core bench``).
"""

from __future__ import annotations

import sys

from bigmodel_core.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["bench", *sys.argv[1:]]))
