"""Dotted paths into a config (``"model.conv.0.channels"``) and the error that names them.

A :class:`ConfigError` carries (field path, message) pairs, so every part that refuses a
config (the schema, the CLI's ``--vary``, the URL codec, a comparison file) names the wrong
field the same way; :func:`brief` is how a message echoes a value from outside: cut short.
"""

from __future__ import annotations

from typing import Any

MAX_SHOWN_PROBLEMS = 20  # a ConfigError's text lists this many problems; .problems keeps all


class ConfigError(ValueError):
    """A config that cannot be used; ``problems`` holds (field path, message) pairs."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        # the text stays readable even when hostile input produces thousands of problems
        shown = [f"{path}: {msg}" if path else msg for path, msg in problems[:MAX_SHOWN_PROBLEMS]]
        if len(problems) > MAX_SHOWN_PROBLEMS:
            shown.append(f"and {len(problems) - MAX_SHOWN_PROBLEMS} more problems")
        super().__init__("; ".join(shown))


def brief(value: Any, limit: int = 60) -> str:
    """repr() of a value from the user, cut short: a message must not echo a huge input back."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"<an integer of about {int(value.bit_length() * 0.30103):,} digits>"  # repr() could not even convert it
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text):,} characters)"


def set_path(d: dict[str, Any], path: str, value: Any) -> None:
    """Set ``d[a][b][c] = value`` for ``path == "a.b.c"``; list items by index ("model.conv.0.channels")."""
    parts = path.split(".")
    node: Any = d
    for i, part in enumerate(parts[:-1]):
        node = _child(node, part, ".".join(parts[: i + 1]))
    last = parts[-1]
    if isinstance(node, list):
        idx = _index(node, last, path)
        node[idx] = value
    elif isinstance(node, dict):
        if last not in node:
            raise ConfigError([(path, f"unknown field {brief(last)}; known here: {', '.join(node)}")])
        node[last] = value
    else:
        raise ConfigError([(path, "is not a field that can be set")])


def get_path(d: dict[str, Any], path: str) -> Any:
    """``d[a][b][c]`` for ``path == "a.b.c"``; list items by index."""
    node: Any = d
    parts = path.split(".")
    for i, part in enumerate(parts):
        node = _child(node, part, ".".join(parts[: i + 1]))
    return node


def _index(node: list, part: str, path: str) -> int:
    try:
        idx = int(part)
    except ValueError:
        raise ConfigError([(path, f"{brief(part)} is not a list index")]) from None
    if not 0 <= idx < len(node):
        raise ConfigError([(path, f"index {idx} is out of range (0..{len(node) - 1})")])
    return idx


def _child(node: Any, part: str, path: str) -> Any:
    if isinstance(node, list):
        return node[_index(node, part, path)]
    if isinstance(node, dict):
        if part not in node:
            raise ConfigError([(path, f"unknown field {brief(part)}; known here: {', '.join(node)}")])
        return node[part]
    raise ConfigError([(path, "is not a section with fields")])
