"""Heavy modules that torch and Captum import on paths this engine uses, loaded only when really needed.

A stand-in takes the module's place in ``sys.modules``; the first time anything reads a name it
does not define itself (or imports one of its submodules), the real module is imported and
answers from then on. Nothing depends on the stand-in for correctness: it only keeps memory
and start-up time out of a server that never uses these modules.

- ``torch._dynamo``, the tracer behind ``torch.compile``, with SymPy, ``torch.distributed`` and
  ``torch.onnx``: about 70 MB of a server's memory and 2 s. Every ``torch.optim`` optimizer imports
  it on its first step, only to call ``graph_break()`` (a marker for the tracer, which does
  nothing when nothing is compiled) and to wrap a few of its methods in ``disable()`` (which tells
  the tracer to skip them). The stand-in's ``graph_break`` does nothing and its ``disable`` calls
  the function as it is, both until the real module is loaded (``torch.compile`` loads it), and
  then pass on to it.
- ``captum.attr._utils.visualization``: Captum's matplotlib plots (matplotlib.pyplot and IPython,
  about 35 MB), imported by ``captum.attr`` though the pages draw with Plotly
  (:func:`defer_captum_plots`, called before Captum is imported).

No torch, Captum or streamlit here: :func:`defer_dynamo` runs when the engine is imported.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import sys
import threading
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

DYNAMO = "torch._dynamo"
CAPTUM_PLOTS = "captum.attr._utils.visualization"


class StandIn(types.ModuleType):
    """A module's stand-in: its own names, and the real module (``load()``) for any other.

    ``package``: a package's stand-in also loads the real one when ``__path__`` is asked for (an
    import of one of its submodules); a plain module's has none, so ``from m import name`` reads
    the stand-in's own names."""

    def __init__(self, name: str, load: Callable[[], types.ModuleType], package: bool = False):
        super().__init__(name)
        self.__dict__["_loading_dunders"] = frozenset({"__all__", "__path__"} if package else {"__all__"})
        self.__dict__["_load_real"] = load
        self.__dict__["_real"] = None
        self.__dict__["_lock"] = threading.RLock()

    def real(self) -> types.ModuleType:
        with self._lock:
            if self._real is None:
                self.__dict__["_real"] = self._load_real()
            return self._real

    def loaded(self) -> types.ModuleType | None:
        return self._real

    def __getattr__(self, name: str) -> Any:
        # other dunders are answered as by a module without them: tools such as inspect.getmodule
        # probe __file__ on every module in sys.modules, and ``from m import name`` probes m.__path__
        if name.startswith("__") and name.endswith("__") and name not in self._loading_dunders:
            raise AttributeError(name)
        return getattr(self.real(), name)


def _package_dir(top: str) -> Path | None:
    """Where top-level package ``top`` is installed, found without importing it."""
    spec = importlib.util.find_spec(top)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


# --- torch._dynamo ---------------------------------------------------------------------------


def _import_dynamo(stand_in: StandIn) -> types.ModuleType:
    if sys.modules.get(DYNAMO) is stand_in:
        del sys.modules[DYNAMO]
    try:
        return importlib.import_module(DYNAMO)  # also sets torch._dynamo to it
    except BaseException:
        sys.modules.setdefault(DYNAMO, stand_in)  # a failed import leaves things as they were
        raise


def _dynamo_stand_in() -> StandIn:
    stand_in = StandIn(DYNAMO, lambda: _import_dynamo(stand_in), package=True)

    def graph_break(*args: Any, **kwargs: Any) -> None:
        real = stand_in.loaded()
        if real is not None:
            real.graph_break(*args, **kwargs)

    def disable(fn: Callable[..., Any] | None = None, recursive: bool = True, **kwargs: Any) -> Any:
        if fn is None:
            return functools.partial(disable, recursive=recursive, **kwargs)
        disabled: list[Callable[..., Any]] = []

        @functools.wraps(fn)
        def call(*args: Any, **kw: Any) -> Any:
            real = stand_in.loaded()
            if real is None:
                return fn(*args, **kw)
            if not disabled:
                disabled.append(real.disable(fn, recursive, **kwargs))
            return disabled[0](*args, **kw)

        return call

    stand_in.graph_break = graph_break  # type: ignore[attr-defined]
    stand_in.disable = disable  # type: ignore[attr-defined]
    return stand_in


def defer_dynamo() -> bool:
    """Put the ``torch._dynamo`` stand-in in place unless the real module is imported; True if it is."""
    if DYNAMO in sys.modules:
        return isinstance(sys.modules[DYNAMO], StandIn)
    sys.modules[DYNAMO] = _dynamo_stand_in()
    return True


# --- Captum's plots ---------------------------------------------------------------------------


def _load_file(name: str, path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def defer_captum_plots() -> bool:
    """Put the stand-in for Captum's plotting module in place before ``captum.attr`` is imported; True if it is.

    Other Captum modules import two drawing functions from it by name when they are imported, so the
    stand-in defines them, loading the real module when one is called.
    """
    if CAPTUM_PLOTS in sys.modules:
        return isinstance(sys.modules[CAPTUM_PLOTS], StandIn)
    if "captum.attr" in sys.modules:
        return False
    root = _package_dir("captum")
    path = root / "attr" / "_utils" / "visualization.py" if root else None
    if path is None or not path.is_file():
        return False
    stand_in = StandIn(CAPTUM_PLOTS, lambda: _load_file(CAPTUM_PLOTS, path))

    def deferred(name: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            return getattr(stand_in.real(), name)(*args, **kwargs)

        call.__name__ = call.__qualname__ = name
        return call

    for name in ("draw_mask_border", "draw_mask_legend"):
        setattr(stand_in, name, deferred(name))
    sys.modules[CAPTUM_PLOTS] = stand_in
    return True
