"""The default `edge.toml`, every key commented, generated from the pydantic Config tree.

Store IT reads `firmware_config/edge.toml` to learn what can be set; generating it from the
one validated tree (descriptions, defaults, bounds) keeps the two from drifting apart, and a
test fails when the shipped file is stale (`python -m edge.config_doc > firmware_config/edge.toml`).
"""

from __future__ import annotations

import json
import sys
import textwrap
import types
import typing
from pathlib import Path
from typing import Any, Final, get_args, get_origin

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from edge.config import SECRET_SOURCES, Config

# The project's line length: the file reads well in a terminal and in review.
WRAP_COLUMNS: Final = 100

HEADER: Final = """\
# kiosk-edge configuration: every key with its default, commented out.
# Generated from the configuration tree by `python -m edge.config_doc`; do not edit by hand.
# Uncomment and change what differs for this kiosk; `kiosk-edge config check` validates the file.
# Relative paths are relative to this file. Unknown keys are errors.
"""


def toml_literal(value: Any) -> str:
    """Render a default value as TOML (strings, numbers, booleans, lists, tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        return json.dumps(str(value), ensure_ascii=False)
    if isinstance(value, BaseModel):
        return toml_literal(value.model_dump(mode="json"))
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_literal(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot render {value!r} as TOML")


def _allowed(info: FieldInfo) -> str:
    """The bounds or choices of a field, phrased for people ("1..65535", "one of a, b")."""
    parts: list[str] = []
    low = high = None
    for meta in info.metadata:
        if isinstance(meta, annotated_types.Ge | annotated_types.Gt):
            low = (">=" if isinstance(meta, annotated_types.Ge) else ">") + str(
                meta.ge if isinstance(meta, annotated_types.Ge) else meta.gt
            )
        if isinstance(meta, annotated_types.Le | annotated_types.Lt):
            high = ("<=" if isinstance(meta, annotated_types.Le) else "<") + str(
                meta.le if isinstance(meta, annotated_types.Le) else meta.lt
            )
    if low or high:
        parts.append(" and ".join(p for p in (low, high) if p))
    choices = _literal_choices(info.annotation)
    if choices:
        parts.append("one of " + ", ".join(toml_literal(c) for c in choices))
    return "; ".join(parts)


def _literal_choices(annotation: Any) -> list[Any]:
    if get_origin(annotation) is typing.Literal:
        return list(get_args(annotation))
    return []


def _is_section(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _is_optional(annotation: Any) -> bool:
    origin = get_origin(annotation)
    return origin in (typing.Union, types.UnionType) and type(None) in get_args(annotation)


def _section_lines(name: str, model: BaseModel) -> list[str]:
    lines: list[str] = []
    doc = (type(model).__doc__ or "").strip().splitlines()
    lines.append(f"[{name}]")
    if doc:
        lines.insert(0, f"# {doc[0]}")
    nested: list[tuple[str, BaseModel]] = []
    for key, info in type(model).model_fields.items():
        value = getattr(model, key)
        if _is_section(info.annotation):
            nested.append((f"{name}.{key}", value))
            continue
        description = info.description or ""
        allowed = _allowed(info)
        comment = description + (f" ({allowed})" if allowed else "")
        if (name, key) in SECRET_SOURCES:
            env, cred = SECRET_SOURCES[(name, key)]
            comment += f" Secret: also ${env} or the systemd credential {cred}."
        lines.extend(
            textwrap.wrap(comment, WRAP_COLUMNS, initial_indent="# ", subsequent_indent="# ")
        )
        if value is None and _is_optional(info.annotation):
            lines.append(f"# {key}: not set by default")
        else:
            lines.append(f"# {key} = {toml_literal(value)}")
    for sub_name, sub_model in nested:
        lines.append("")
        lines.extend(_section_lines(sub_name, sub_model))
    return lines


def default_toml(config: Config | None = None) -> str:
    """The commented default configuration file for ``config`` (the defaults when None)."""
    config = config or Config()
    out = [HEADER]
    for key in type(config).model_fields:
        out.extend(_section_lines(key, getattr(config, key)))
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def main() -> int:
    """Print the default edge.toml (redirect it into firmware_config/edge.toml)."""
    sys.stdout.write(default_toml())
    return 0


if __name__ == "__main__":
    sys.exit(main())
