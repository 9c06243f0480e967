"""Load the engine's heavy parts in the background, once per server process.

Home and the sidebar load no torch (ui.state, ui.sidebar), so the first page a learner opens
is drawn without waiting for it. Once that page has been served, one background thread
imports torch, the engine and the Train page's modules, builds the default experiment's
dataset (cached by the registry) and finds the device. The first click on
Train then pays none of it. A page that needs the engine before the thread is done simply
waits on Python's import lock for the part still loading.

No streamlit and no torch at import time; what the thread found is read with :func:`device`.
"""

from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger("bigmodel.app")

_lock = threading.Lock()
_thread: threading.Thread | None = None
_done = threading.Event()
_device: str | None = None
_seconds: float | None = None


def start(delay: float = 0.2) -> bool:
    """Start the warm-up thread unless one was started before in this process; True if this call did.

    ``delay`` lets the page that triggered it reach the browser first: the imports hold the GIL
    for long stretches, and the server thread needs it to send the page.
    """
    global _thread
    with _lock:
        if _thread is not None:
            return False
        _thread = threading.Thread(target=_warm, args=(delay,), name="bigmodel-warmup", daemon=True)
        _thread.start()
        return True


def _warm(delay: float) -> None:
    global _device, _seconds
    time.sleep(delay)
    t0 = time.perf_counter()
    try:
        # imported here, on this thread, on purpose: that is the whole job of this module
        import torch  # noqa: F401, PLC0415 - the heavy import this thread exists for

        from bigmodel_core.config.presets import load_preset  # noqa: PLC0415 - after torch, same reason
        from bigmodel_core.training import jobs  # noqa: F401, PLC0415 - the pool, the Trainer
        from bigmodel_core.training.trainer import device_label, load_data, resolve_device  # noqa: PLC0415

        _device = device_label(resolve_device("auto"))
        # the Train page's own imports, and the default experiment's data
        from bigmodel_core.experiments import compare  # noqa: F401, PLC0415
        from bigmodel_core.export import export_script  # noqa: F401, PLC0415
        from bigmodel_core.inspect import live_probe, probes  # noqa: F401, PLC0415
        from ui.figures import live_probe as live_figures  # noqa: F401, PLC0415
        from ui.figures import training  # noqa: F401, PLC0415

        load_data(load_preset("quickstart_cnn"))
    except Exception:  # noqa: BLE001 - a failed warm-up only means the first page that trains pays the cost
        log.exception("warming the engine failed; the first training will load it instead")
    finally:
        _seconds = time.perf_counter() - t0
        _done.set()


def device() -> str | None:
    """The device label ("CPU", "CUDA (...)") once the warm-up found it, else None."""
    return _device


def ready() -> bool:
    return _done.is_set()


def wait(timeout: float | None = None) -> bool:
    """Block until the warm-up has finished (True) or ``timeout`` passed (False)."""
    return _done.wait(timeout)


def seconds() -> float | None:
    """How long the warm-up took, once done (for the benchmark and the logs)."""
    return _seconds
