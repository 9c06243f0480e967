"""torch.compile's tracer (torch._dynamo) waits behind a stand-in until something really uses it.

Every torch.optim optimizer imports it on its first step; the stand-in keeps it (and SymPy, about
70 MB) out of a server that never compiles, and changes no result.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# one short training with each optimizer the engine builds, in a fresh interpreter
TRAIN = """
import json, sys
{first}
import bigmodel_core
from bigmodel_core.config.specs import parse_config
from bigmodel_core.config.specs import OPTIMIZERS
from bigmodel_core.training.trainer import Trainer
out = {{}}
for name in OPTIMIZERS:
    cfg = parse_config({{"data": {{"name": "synthetic_digits", "train_size": 64, "val_size": 16}},
                        "model": {{"family": "cnn", "conv": [{{"channels": 2}}], "dense": []}},
                        "optimizer": {{"name": name}},
                        "training": {{"epochs": 2, "batch_size": 16, "device": "cpu"}}}})
    trainer = Trainer(cfg)
    trainer.fit()
    out[name] = trainer.summary()["final"]
print(json.dumps({{"final": out, "dynamo": type(sys.modules["torch._dynamo"]).__name__,
                  "sympy": "sympy" in sys.modules}}))
"""


def run(code: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_training_leaves_the_tracer_unloaded_and_gives_the_same_results_as_with_it():
    deferred = run(TRAIN.format(first=""))
    real = run(TRAIN.format(first="import torch._dynamo"))  # imported first: the engine leaves it alone
    assert (deferred["dynamo"], deferred["sympy"]) == ("StandIn", False)
    assert real["dynamo"] == "module"
    assert deferred["final"] == real["final"]


def test_torch_compile_and_the_tracers_submodules_load_the_real_module():
    code = """
import sys, bigmodel_core, torch
net = torch.nn.Linear(3, 1)
opt = torch.optim.Adam(net.parameters(), lr=0.1)
net(torch.ones(2, 3)).sum().backward(); opt.step(); opt.zero_grad()
before = type(sys.modules["torch._dynamo"]).__name__
f = torch.compile(lambda x: torch.sin(x) + 1, backend="eager")
value = f(torch.zeros(2)).tolist()
after = type(sys.modules["torch._dynamo"]).__name__
net(torch.ones(2, 3)).sum().backward(); opt.step()  # the optimizer's wrappers now use the real module
print(before, after, torch._dynamo is sys.modules["torch._dynamo"], value)
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["StandIn", "module", "True", "[1.0,", "1.0]"]
    code = ("import sys, bigmodel_core; import torch._dynamo.config as c; "
            "print(type(sys.modules['torch._dynamo']).__name__, c.recompile_limit > 0)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["module", "True"]
