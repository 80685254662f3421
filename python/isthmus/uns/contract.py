"""The consumer-facing contract of a data model, and a fingerprint of it.

A model's JSON Schema carries documentation (``description`` from docstrings and
``Meta``) and its exact layout depends on the msgspec version that renders it (0.23
started stripping docstring indentation, for example). Consumers depend on less than
that: field names on the wire, types, bounds and lengths, which fields are required,
enum/literal values and units. :func:`contract` describes exactly those, built from
:mod:`msgspec.inspect` attribute by attribute, so the fingerprint changes when the
contract does and only then.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import msgspec
import msgspec.inspect as mi

__all__ = ["contract", "contract_fingerprint"]

# Constraints that change what a consumer may receive; read when present and not None.
_CONSTRAINTS = ("gt", "ge", "lt", "le", "multiple_of", "min_length", "max_length", "pattern", "tz")
# Keys of ``extra_json_schema`` that only document (the rest, e.g. ``x-unit``, is contract).
_DOCUMENTATION = frozenset({"title", "description", "examples", "$comment"})


def contract(model: type[Any]) -> dict[str, Any]:
    """The contract of ``model`` (a msgspec Struct) and every Struct it refers to.

    Returns ``{"root": name, "structs": {name: {...}}}`` with plain JSON values: field
    wire names in order, each with ``required`` and its type (kind, constraints, literal
    values, item/key/value types, unions as sorted alternatives, units).
    """
    structs: dict[str, Any] = {}
    root = _describe(mi.type_info(model), structs)
    return {"root": root, "structs": structs}


def contract_fingerprint(model: type[Any]) -> str:
    """16 hex digits of SHA-256 over :func:`contract` in canonical JSON."""
    text = json.dumps(contract(model), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _describe(t: mi.Type, structs: dict[str, Any]) -> Any:
    if isinstance(t, mi.Metadata):
        described = _describe(t.type, structs)
        extra = {k: v for k, v in (t.extra_json_schema or {}).items() if k not in _DOCUMENTATION}
        if not extra:
            return described
        return {"meta": _plain(extra), "type": described}
    if isinstance(t, mi.StructType):
        name = f"{t.cls.__module__}.{t.cls.__qualname__}"
        if name not in structs:
            structs[name] = None  # reserve first: recursive models terminate
            structs[name] = {
                "tag": _plain(t.tag) if t.tag_field is not None else None,
                "tag_field": t.tag_field,
                "array_like": t.array_like,
                "fields": [
                    {
                        "name": f.encode_name,
                        "required": f.required,
                        "type": _describe(f.type, structs),
                    }
                    for f in t.fields
                ],
            }
        return {"struct": name}
    if isinstance(t, mi.UnionType):
        alternatives = [_describe(x, structs) for x in t.types]
        return {"union": sorted(alternatives, key=lambda a: json.dumps(a, sort_keys=True))}
    if isinstance(t, mi.LiteralType):
        return {"literal": sorted((_plain(v) for v in t.values), key=repr)}
    if isinstance(t, mi.EnumType):
        return {"enum": sorted((_plain(m.value) for m in t.cls), key=repr)}
    node: dict[str, Any] = {"kind": type(t).__name__.removesuffix("Type").lower()}
    for name in _CONSTRAINTS:
        value = getattr(t, name, None)
        if value is not None:
            node[name] = _plain(value)
    if isinstance(t, mi.DictType):
        node["key"] = _describe(t.key_type, structs)
        node["value"] = _describe(t.value_type, structs)
    elif isinstance(t, mi.TupleType):
        node["items"] = [_describe(x, structs) for x in t.item_types]
    elif isinstance(t, mi.CollectionType):
        node["item"] = _describe(t.item_type, structs)
    return node


def _plain(value: Any) -> Any:
    return msgspec.to_builtins(value)
