"""pydantic's validation errors as (field path, message) pairs a learner can act on.

pydantic reports ``("model", "cnn", "conv", 0, "kernel")`` and "Input should be less than or
equal to 15"; a :class:`~.paths.ConfigError` says ``model.conv[0].kernel: Input should be less
than or equal to 15 (got 99)``: the discriminated union's tag is dropped from the path, an
unknown key lists the keys allowed where it was found, a wrong family lists the families, and
every value echoed is cut short.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from bigmodel_core.safejson import TooLong, too_long_message

from .paths import brief

# the error kinds whose message gains the offending value, "(got 99)"
_SHOW_VALUE = ("greater_than", "greater_than_equal", "less_than", "less_than_equal", "literal_error", "int_type",
               "float_type", "bool_type", "string_type", "finite_number", "int_from_float")


def validation_problems(exc: ValidationError, root: type[BaseModel],
                        tagged: dict[str, type[BaseModel]]) -> list[tuple[str, str]]:
    """Every error of ``exc`` (raised validating ``root``) as (dotted path, message).

    ``tagged`` maps each tag of the model union to its model (``{"cnn": CNNSpec, "lstm": RNNSpec,
    ...}``), in the order the messages list them.
    """
    problems: list[tuple[str, str]] = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        kind = err["type"]
        if kind == "extra_forbidden":
            parent = _section_model(loc[:-1], root, tagged)
            allowed = _allowed_keys(parent)
            msg = f"unknown key {brief(loc[-1])}" + (f"; allowed keys: {allowed}" if allowed else "")
        elif kind == "union_tag_invalid":
            got = err["input"].get("family") if isinstance(err["input"], dict) else err["input"]
            msg = f"unknown model family {brief(got)}; choose one of: {', '.join(tagged)}"
        elif kind == "union_tag_not_found":
            msg = f"missing 'family'; choose one of: {', '.join(tagged)}"
        elif isinstance(err.get("input"), TooLong):
            msg = too_long_message(err["input"])
        else:
            msg = err["msg"]
            if msg.startswith("Value error, "):
                msg = msg[len("Value error, ") :]
            if kind in _SHOW_VALUE:
                msg = f"{msg} (got {brief(err['input'])})"
        problems.append((_loc_to_path(loc, tagged), msg))
    return problems


def _loc_to_path(loc: tuple[Any, ...], tagged: dict[str, type[BaseModel]]) -> str:
    out = ""
    for item in loc:
        if isinstance(item, int):
            out += f"[{item}]"
        elif item in tagged and out.endswith("model"):
            continue  # the discriminated-union tag pydantic inserts: model.cnn.conv -> model.conv
        else:
            out += ("." if out else "") + str(item)
    return out


def _allowed_keys(model: type[BaseModel] | None) -> str:
    return ", ".join(model.model_fields) if model else ""


def _section_model(loc: tuple[Any, ...], root: type[BaseModel],
                   tagged: dict[str, type[BaseModel]]) -> type[BaseModel] | None:
    """The pydantic model that owns the container at ``loc`` (for unknown-key messages)."""
    model: Any = root
    for item in loc:
        if isinstance(item, int):
            continue
        if item in tagged:
            if model is not None:
                model = tagged[item]
            continue
        field = model.model_fields.get(item) if model else None
        if field is None:
            return None
        ann = field.annotation
        model = _model_in(ann)
    return model


def _model_in(ann: Any) -> Any:
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for arg in getattr(ann, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None
