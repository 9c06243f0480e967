"""Experiment configs as readable URL query parameters (no streamlit import).

A shared URL names a base preset and only the fields that differ from it, as dotted
paths: ``?preset=quickstart_cnn&optimizer.lr=0.01&training.epochs=3``. A list whose
length differs from the preset's (e.g. more conv blocks) travels whole, as JSON.
Reading is forgiving: each bad value is skipped with a warning naming it.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from bigmodel_core.presets import load_preset, preset_names
from bigmodel_core.specs import ConfigError, ExperimentConfig

DEFAULT_PRESET = "quickstart_cnn"
RESERVED = {"preset", "lesson", "view", "run", "embed"}


def _flatten(value: Any, base: Any, path: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict) and isinstance(base, dict) and set(value) == set(base):
        for k in value:
            _flatten(value[k], base[k], f"{path}.{k}" if path else k, out)
    elif isinstance(value, list) and isinstance(base, list) and len(value) == len(base):
        for i, (v, b) in enumerate(zip(value, base)):
            _flatten(v, b, f"{path}.{i}", out)
    elif value != base:
        out[path] = value


def config_to_query(cfg: ExperimentConfig, base: str = DEFAULT_PRESET) -> dict[str, str]:
    """Query parameters that rebuild ``cfg`` from the preset ``base``."""
    diffs: dict[str, Any] = {}
    _flatten(cfg.to_dict(), load_preset(base).to_dict(), "", diffs)
    query = {"preset": base}
    for path, value in diffs.items():
        query[path] = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return query


def _parse_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, ValueError):
        return raw


def config_from_query(params: Mapping[str, str]) -> tuple[ExperimentConfig | None, list[str]]:
    """(config, warnings); config is None when the query says nothing about one."""
    warnings: list[str] = []
    fields = {k: v for k, v in params.items() if k not in RESERVED}
    name = params.get("preset")
    if name is None and not fields:
        return None, warnings
    if name is not None and name not in preset_names():
        warnings.append(f"ignored preset={name!r}: unknown preset; choose one of: {', '.join(preset_names())}")
        name = None
    cfg = load_preset(name or DEFAULT_PRESET)
    # structural fields first (family, list lengths) so that dotted paths into them resolve
    order = sorted(fields, key=lambda k: (k.count("."), k))
    for key in order:
        value = _parse_value(fields[key])
        try:
            cfg = cfg.with_changes({key: value})
        except ConfigError as exc:
            warnings.append(f"ignored {key}={fields[key]!r}: {exc}")
    return cfg, warnings
