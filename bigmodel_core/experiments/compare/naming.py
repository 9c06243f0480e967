"""Values, names and what differs: ``--vary`` parsing, legend names, and the diff of run configs.

What differs between runs is always computed by diffing their flattened configs, never taken
from the sweep's own description.
"""

from __future__ import annotations

import json
import math
from typing import Any

from bigmodel_core.config.specs import ConfigError, ExperimentConfig
from bigmodel_core.safejson import JSONInputError, loads


def parse_value(text: str) -> Any:
    """A sweep value: JSON where possible (numbers, null, true, objects), else the plain string."""
    text = text.strip()
    try:
        return loads(text)  # an over-long number becomes a marker the config refuses naming the field
    except JSONInputError:
        return text


def split_values(text: str) -> list[str]:
    """Split ``V1,V2,...`` on the commas that are not inside brackets, braces or quotes."""
    parts: list[str] = []
    depth, quote, start = 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            if ch == quote and text[i - 1] != "\\":
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def parse_vary(specs: list[str]) -> dict[str, list[Any]]:
    """``["optimizer.name=sgd,adam", "optimizer.lr=0.1,0.001"]`` -> {field: values}, lengths checked."""
    vary: dict[str, list[Any]] = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip()
        if not sep or not name or not values.strip():
            raise ConfigError([("--vary", f"{spec!r} is not FIELD=V1,V2,... (e.g. optimizer.lr=0.1,0.01)")])
        if name in vary:
            raise ConfigError([(name, "is given twice in --vary")])
        items = split_values(values)
        if any(not v for v in items):
            raise ConfigError([(name, f"an empty value in {values!r}")])
        vary[name] = [parse_value(v) for v in items]
    lengths = {len(v) for v in vary.values()}
    if len(lengths) > 1:
        detail = ", ".join(f"{k} has {len(v)}" for k, v in vary.items())
        raise ConfigError([("--vary", f"the value lists must have equal length to pair up run by run ({detail})")])
    return vary


def fmt_value(v: Any) -> str:
    """Compact value text for legends: 0.001 -> 1e-3, 0.05 -> 0.05, True -> true."""
    if isinstance(v, bool) or v is None:
        return json.dumps(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)  # inf, -inf, nan: there is no mantissa to shorten
        if v != 0 and (abs(v) < 0.01 or abs(v) >= 1e5):
            mantissa, exp = f"{v:.2e}".split("e")
            mantissa = mantissa.rstrip("0").rstrip(".")
            return f"{mantissa}e{int(exp)}"
        return f"{v:g}"
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(",", ":"))
    return str(v)


def short_field(path: str) -> str:
    """The part of a dotted path a legend needs: optimizer.lr -> lr, model.conv.0.dropout -> conv.0.dropout."""
    parts = path.split(".")
    return ".".join(parts[1:]) if len(parts) > 1 else path


def run_name(changes: dict[str, Any]) -> str:
    """A legend name that says the setting, e.g. ``adam lr=1e-3``."""
    bits: list[str] = []
    if "optimizer.name" in changes:
        bits.append(str(changes["optimizer.name"]))
    for path, value in changes.items():
        if path != "optimizer.name":
            bits.append(f"{short_field(path)}={fmt_value(value)}")
    return " ".join(bits) or "base"


def unique_names(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n} ({seen[n]})")
    return out


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": [1, {"c": 2}]}}`` -> {"a.b.0": 1, "a.b.1.c": 2}; empty containers stay as leaves."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(value, list) and value:
        out = {}
        for i, v in enumerate(value):
            out.update(flatten(v, f"{prefix}.{i}" if prefix else str(i)))
        return out
    return {prefix: value}


ABSENT = "(absent)"


def differing_fields(configs: list[ExperimentConfig]) -> list[str]:
    """Dotted paths whose value is not the same in every config (a path missing somewhere counts)."""
    flats = [flatten(c.to_dict()) for c in configs]
    keys: list[str] = []
    for f in flats:
        keys += [k for k in f if k not in keys]
    return [k for k in keys if len({json.dumps(f.get(k, ABSENT), sort_keys=True) for f in flats}) > 1]


def differs_rows(names: list[str], configs: list[ExperimentConfig]) -> list[dict[str, Any]]:
    """One row per run: its name and its value of every field that differs between the runs."""
    fields = differing_fields(configs)
    rows = []
    for name, cfg in zip(names, configs):
        flat = flatten(cfg.to_dict())
        rows.append({"run": name, **{k: fmt_value(flat[k]) if k in flat else ABSENT for k in fields}})
    return rows


def names_from_diff(configs: list[ExperimentConfig]) -> list[str]:
    fields = differing_fields(configs)
    names = []
    for i, cfg in enumerate(configs):
        flat = flatten(cfg.to_dict())
        changes = {k: flat.get(k, ABSENT) for k in fields}
        names.append(run_name(changes) if changes else f"run {i + 1}")
    return unique_names(names)
