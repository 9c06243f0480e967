"""Which compute devices a config may name, and whether this machine has the one it names."""

from __future__ import annotations

from .paths import brief

DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda", "mps")


def device_problem(name: str) -> str | None:
    """Why ``training.device`` ``name`` cannot be used on this machine, or None when it can."""
    import torch  # noqa: PLC0415 - the config loads without torch (about 1 s); only this check needs it

    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            return f"{brief(name)}: no CUDA GPU is available here; use 'auto' or 'cpu'"
        index = int(name.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            return (f"{brief(name)}: this machine has {torch.cuda.device_count()} CUDA GPU(s), "
                    f"cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        return "'mps': Apple MPS is not available here; use 'auto' or 'cpu'"
    return None
