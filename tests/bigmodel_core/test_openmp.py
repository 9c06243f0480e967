"""The OpenMP wait policy: passive for the app server, libgomp's default for the command line."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(code: str, **env_extra: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env.update(env_extra)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_passive_before_torch_takes_effect():
    out = _run(
        "from bigmodel_core.openmp import wait_passively\n"
        "ok = wait_passively()\n"
        "import os, torch\n"
        "print(ok, os.environ['OMP_WAIT_POLICY'])"
    )
    assert out == "True PASSIVE"


def test_too_late_after_torch_is_reported():
    out = _run(
        "import os, torch\n"
        "from bigmodel_core.openmp import wait_passively\n"
        "print(wait_passively(), os.environ.get('OMP_WAIT_POLICY'))"
    )
    assert out == "False None"


def test_a_policy_from_the_environment_is_kept():
    out = _run(
        "import os\n"
        "from bigmodel_core.openmp import wait_passively\n"
        "print(wait_passively(), os.environ['OMP_WAIT_POLICY'])",
        OMP_WAIT_POLICY="ACTIVE",
    )
    assert out == "False ACTIVE"


def test_the_command_line_keeps_the_default_and_the_app_waits_passively():
    cli = _run("import os, bigmodel_core.cli, torch; print(os.environ.get('OMP_WAIT_POLICY'))")
    assert cli == "None"
    app = _run(
        "import os, runpy, sys\n"
        "from streamlit.testing.v1 import AppTest\n"
        "at = AppTest.from_file('app.py', default_timeout=60).run()\n"
        "print(os.environ.get('OMP_WAIT_POLICY'))"
    )
    assert app.splitlines()[-1] == "PASSIVE"
