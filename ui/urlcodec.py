"""Experiment configs as readable URL query parameters (no streamlit import).

A shared URL names a base preset and only the fields that differ from it, as dotted
paths: ``?preset=quickstart_cnn&optimizer.lr=0.01&training.epochs=3``. A list whose
length differs from the preset's (e.g. more conv blocks) travels whole, as JSON.
Reading is forgiving: each bad value is skipped with a warning naming it.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from bigmodel_core.config.presets import load_preset, preset_names
from bigmodel_core.config.specs import ConfigError, ExperimentConfig, device_problem, parse_config, set_path
from bigmodel_core.limits import current_limits
from bigmodel_core.safejson import JSONInputError, loads

DEFAULT_PRESET = "quickstart_cnn"
RESERVED = {"preset", "lesson", "view", "run", "embed"}
MAX_KEY_CHARS = 200  # the longest real dotted path is far shorter


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
        return loads(raw)  # an over-long number becomes a marker the schema refuses naming the field
    except JSONInputError:  # not JSON (a name such as adam), or nested too deeply: a plain string
        return raw


def _shown(raw: str, limit: int = 80) -> str:
    """A query value as quoted in a warning, cut short so a hostile URL cannot flood the page."""
    return repr(raw) if len(raw) <= limit else repr(raw[:limit]) + f"... ({len(raw):,} characters)"


def config_from_query(params: Mapping[str, str]) -> tuple[ExperimentConfig | None, list[str]]:
    """(config, warnings); config is None when the query says nothing about one."""
    warnings: list[str] = []
    fields = {k: v for k, v in params.items() if k not in RESERVED}
    name = params.get("preset")
    if name is None and not fields:
        return None, warnings
    if name is not None and name not in preset_names():
        warnings.append(f"ignored preset={_shown(name)}: unknown preset; choose one of: {', '.join(preset_names())}")
        name = None
    limit = current_limits().max_config_bytes
    for key in [k for k, v in fields.items() if len(k) > MAX_KEY_CHARS or len(v) > limit]:
        # an oversized field is dropped on its own, so the sensible fields next to it still apply
        warnings.append(f"ignored {_shown(key)}={_shown(fields.pop(key))}: longer than the limit "
                        f"({MAX_KEY_CHARS} characters for a name, {limit:,} for a value)")
    base = load_preset(name or DEFAULT_PRESET)
    raw = {k: _parse_value(v) for k, v in fields.items()}
    # structural fields first (family, whole lists) so that dotted paths into them resolve
    order = sorted(raw, key=lambda k: (k.count("."), k))
    unknown: list[str] = []
    while True:
        d = base.to_dict()
        for key in list(order):
            try:
                set_path(d, key, raw[key])
            except ConfigError as exc:
                if "unknown field" in str(exc) or "not a list index" in str(exc):
                    unknown.append(key)  # summarised in one line below, however many there are
                else:
                    warnings.append(f"ignored {_shown(key)}={_shown(fields[key])}: {exc}")
                order.remove(key)
        if unknown:
            warnings.append(_unknown_summary(unknown))
            unknown = []
        try:
            cfg = parse_config(d)
            problem = device_problem(cfg.training.device)
            if problem and "training.device" in order:  # a device this machine lacks: keep the base's
                warnings.append(f"ignored 'training.device'={_shown(fields['training.device'])}: {problem}")
                order.remove("training.device")
                continue
            return cfg, warnings
        except ConfigError as exc:
            bad = [k for k in order if any(_related(k, path) for path, _ in exc.problems)]
            if not bad:  # a cross-field problem no single value explains: keep the base
                warnings.append(f"ignored the query's changes: {exc}")
                return base, warnings
            for k in bad:
                why = "; ".join(m for p, m in exc.problems if _related(k, p))
                warnings.append(f"ignored {_shown(k)}={_shown(fields[k])}: {why}")
                order.remove(k)


MAX_NAMED_UNKNOWN = 8  # unknown parameters named in the summary line; the rest are counted


def _unknown_summary(keys: list[str]) -> str:
    named = ", ".join(_shown(k, 40) for k in sorted(keys)[:MAX_NAMED_UNKNOWN])
    more = f" and {len(keys) - MAX_NAMED_UNKNOWN:,} more" if len(keys) > MAX_NAMED_UNKNOWN else ""
    what = "parameter" if len(keys) == 1 else "parameters"
    return f"ignored {len(keys):,} unknown {what}: {named}{more} (not fields of the experiment config)"


def _related(key: str, problem_path: str) -> bool:
    """Whether a query key (model.conv.0.kernel) is the field a problem names (model.conv[0].kernel)."""
    norm = problem_path.replace("[", ".").replace("]", "")
    return bool(norm) and (norm == key or norm.startswith(key + ".") or key.startswith(norm + "."))
