"""Decode a parsed TOML document into msgspec Structs, collecting *every* error.

``msgspec.convert`` stops at the first problem. A plant engineer fixing a
configuration wants the whole list at once, each with its path, so this walks
Struct fields, lists and dicts itself and hands only the leaves to msgspec.
When the walk finds nothing, the caller converts the whole document with
msgspec once more, so the resulting objects follow msgspec's semantics exactly.
"""

from __future__ import annotations

import functools
import re
import types
import typing
from typing import Any

import msgspec

_AT = re.compile(r" - at `\$(?P<rest>[^`]*)`$")


def join(path: str, key: str | int) -> str:
    """``join("assets[2]", "vibration")`` -> ``"assets[2].vibration"``; ints index lists."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _leaf_error(path: str, exc: msgspec.ValidationError) -> str:
    message = str(exc)
    match = _AT.search(message)
    if match:
        message = message[: match.start()]
        path = path + match.group("rest")
    return f"{path or '<root>'}: {message}"


def _is_struct(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, msgspec.Struct)


def collect_errors(raw: Any, tp: Any, path: str, errors: list[str]) -> None:
    """Append to ``errors`` every way ``raw`` fails to be a ``tp``, each prefixed by its path."""
    origin = typing.get_origin(tp)
    if _is_struct(tp):
        _struct_errors(raw, tp, path, errors)
    elif origin is list and isinstance(raw, list):
        (item_tp,) = typing.get_args(tp)
        for index, item in enumerate(raw):
            collect_errors(item, item_tp, join(path, index), errors)
    elif origin is dict and isinstance(raw, dict):
        key_tp, value_tp = typing.get_args(tp)
        for key, value in raw.items():
            collect_errors(key, key_tp, join(path, str(key)), errors)
            collect_errors(value, value_tp, join(path, str(key)), errors)
    elif origin in (typing.Union, types.UnionType) and isinstance(raw, dict):
        members = [m for m in typing.get_args(tp) if _is_struct(m)]
        chosen = _pick_tagged(raw, members)
        if chosen is not None:
            collect_errors(raw, chosen, path, errors)
        else:
            _leaf(raw, tp, path, errors)
    else:
        _leaf(raw, tp, path, errors)


def _leaf(raw: Any, tp: Any, path: str, errors: list[str]) -> None:
    try:
        msgspec.convert(raw, tp)
    except msgspec.ValidationError as exc:
        errors.append(_leaf_error(path, exc))


def _pick_tagged(raw: dict[str, Any], members: list[Any]) -> Any:
    """The member of a tagged Struct union that ``raw`` names, if there is exactly one."""
    for member in members:
        config = member.__struct_config__
        if config.tag_field is not None and raw.get(config.tag_field) == config.tag:
            return member
    if len(members) == 1:
        return members[0]
    return None


@functools.cache
def _fields(tp: type[msgspec.Struct]) -> tuple[msgspec.structs.FieldInfo, ...]:
    # msgspec re-evaluates the annotations on every call: once per type, not per entry
    # (50k tags took 40 s of start-up in msgspec.structs.fields alone)
    return msgspec.structs.fields(tp)


def _struct_errors(raw: Any, tp: type[msgspec.Struct], path: str, errors: list[str]) -> None:
    if not isinstance(raw, dict):
        _leaf(raw, tp, path, errors)
        return
    fields = _fields(tp)
    known = {f.encode_name for f in fields}
    tag_field = tp.__struct_config__.tag_field
    if tag_field is not None:
        known.add(tag_field)
    for key in raw:
        if key not in known:
            errors.append(
                f"{join(path, key)}: unknown field (expected one of {', '.join(sorted(known))})"
            )
    # What is sound, kept to run this Struct's own cross-field checks even when some
    # children are broken: a bad tag must not hide the device's bad port.
    pruned: dict[str, Any] = {}
    missing = False
    for field in fields:
        name = field.encode_name
        if name not in raw:
            if field.required:
                errors.append(f"{join(path, name)}: missing required field")
                missing = True
            continue
        value = raw[name]
        fpath = join(path, name)
        if typing.get_origin(field.type) is list and isinstance(value, list):
            (item_tp,) = typing.get_args(field.type)
            kept = []
            for index, item in enumerate(value):
                before = len(errors)
                collect_errors(item, item_tp, join(fpath, index), errors)
                if len(errors) == before:
                    kept.append(item)
            pruned[name] = kept
            continue
        before = len(errors)
        collect_errors(value, field.type, fpath, errors)
        if len(errors) == before:
            pruned[name] = value
        elif field.required:
            missing = True
    if missing or not hasattr(tp, "__post_init__"):
        return
    try:
        msgspec.convert(pruned, tp)
    except msgspec.ValidationError as exc:
        message = _leaf_error(path, exc)
        # Checks that name their field ("url: no host in ...") get it on the path;
        # a check reporting several problems gives one line each.
        head, _, rest = message.partition(": ")
        for line in rest.split("\n"):
            named, sep, detail = line.partition(": ")
            if sep and named in known:
                errors.append(f"{join(head, named)}: {detail}")
            else:
                errors.append(f"{head}: {line}")
