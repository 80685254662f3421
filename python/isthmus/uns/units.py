"""Declared unit conversion from vendor tags to model fields, and report by exception.

Units are declared, not coded per vendor: each unit belongs to a quantity kind and is an
affine map to that kind's base unit; :data:`CONVERSIONS` holds every (from, to) pair of
the same kind as ``to = scale * from + offset``. A mapping such as::

    [[assets.p101.mapping]]
    tag = "P101_BRG_TEMP"      # vendor tag name
    field = "bearing_temperature_c"
    unit = "degF"              # the tag's unit; omitted = already the field's unit

is checked against the units the model declares on its fields (:func:`field_units`); an
unknown field or unit, or units of different kinds (``degF`` onto a ``bar`` field), is a
:class:`isthmus.ConfigError` naming the mapping entry.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import msgspec

from isthmus.errors import ConfigError
from isthmus.uns.models import Quality, checked, field_units

__all__ = [
    "CONVERSIONS",
    "UNITS",
    "Affine",
    "FieldMap",
    "MappedProduct",
    "Mapper",
    "ReportByException",
    "compile_mapping",
    "conversion",
]


class Affine(NamedTuple):
    """``to = scale * from + offset``."""

    scale: float
    offset: float = 0.0

    def __call__(self, value: float) -> float:
        return self.scale * value + self.offset


class _Unit(NamedTuple):
    kind: str
    to_base: Affine  # value in this unit -> value in the kind's base unit


_STANDARD_GRAVITY = 9.80665  # m/s^2 per g (CGPM 1901)
_PSI_PA = 6894.757293168361  # Pa per lbf/in^2
_INCH_MM = 25.4

#: Unit name -> (kind, affine map to the base unit of the kind).
UNITS: dict[str, _Unit] = {
    # temperature, base degC
    "degC": _Unit("temperature", Affine(1.0)),
    "degF": _Unit("temperature", Affine(5.0 / 9.0, -32.0 * 5.0 / 9.0)),
    "K": _Unit("temperature", Affine(1.0, -273.15)),
    # rotational speed, base rpm
    "rpm": _Unit("rotational speed", Affine(1.0)),
    "Hz": _Unit("rotational speed", Affine(60.0)),  # revolutions per second
    "rad/s": _Unit("rotational speed", Affine(60.0 / (2.0 * math.pi))),
    # velocity, base mm/s
    "mm/s": _Unit("velocity", Affine(1.0)),
    "m/s": _Unit("velocity", Affine(1000.0)),
    "in/s": _Unit("velocity", Affine(_INCH_MM)),
    "ips": _Unit("velocity", Affine(_INCH_MM)),
    # acceleration, base m/s^2
    "m/s^2": _Unit("acceleration", Affine(1.0)),
    "mm/s^2": _Unit("acceleration", Affine(1e-3)),
    "g": _Unit("acceleration", Affine(_STANDARD_GRAVITY)),
    # pressure, base bar
    "bar": _Unit("pressure", Affine(1.0)),
    "mbar": _Unit("pressure", Affine(1e-3)),
    "Pa": _Unit("pressure", Affine(1e-5)),
    "kPa": _Unit("pressure", Affine(1e-2)),
    "MPa": _Unit("pressure", Affine(10.0)),
    "psi": _Unit("pressure", Affine(_PSI_PA * 1e-5)),
    # electric current, base A
    "A": _Unit("current", Affine(1.0)),
    "mA": _Unit("current", Affine(1e-3)),
    # power, base kW
    "kW": _Unit("power", Affine(1.0)),
    "W": _Unit("power", Affine(1e-3)),
    "MW": _Unit("power", Affine(1e3)),
    "hp": _Unit("power", Affine(0.745699872)),  # mechanical horsepower
    # dimensionless ratio, base 1
    "1": _Unit("ratio", Affine(1.0)),
    "%": _Unit("ratio", Affine(0.01)),
}


def _compose(src: _Unit, dst: _Unit) -> Affine:
    # base = a*x + b ; y = (base - d) / c
    a, b = src.to_base
    c, d = dst.to_base
    return Affine(a / c, (b - d) / c)


#: (from unit, to unit) -> affine transform, for every pair of the same kind.
CONVERSIONS: dict[tuple[str, str], Affine] = {
    (f, t): _compose(uf, ut)
    for f, uf in UNITS.items()
    for t, ut in UNITS.items()
    if uf.kind == ut.kind
}


def conversion(from_unit: str, to_unit: str, where: str = "unit") -> Affine:
    """The affine transform from one unit to another; ConfigError naming ``where``."""
    for unit in (from_unit, to_unit):
        if unit not in UNITS:
            known = ", ".join(UNITS)
            raise ConfigError(f"{where}: unknown unit {unit!r} (known: {known})")
    try:
        return CONVERSIONS[(from_unit, to_unit)]
    except KeyError:
        raise ConfigError(
            f"{where}: cannot convert {from_unit} ({UNITS[from_unit].kind}) "
            f"to {to_unit} ({UNITS[to_unit].kind})"
        ) from None


class FieldMap(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """One vendor tag mapped onto one model field."""

    tag: str
    field: str
    #: The tag's unit; ``None`` means it is already in the field's declared unit.
    unit: str | None = None


class MappedProduct(NamedTuple):
    """A data product built from tag values, with the quality it may be published with."""

    product: msgspec.Struct
    #: ``good``, or ``uncertain`` when a value broke the model's schema and was left out.
    quality: Quality
    #: One line per value left out, naming the tag, the field and the schema's objection.
    reasons: list[str]


class Mapper:
    """A validated mapping: turns vendor tag values into model field values."""

    def __init__(
        self, model: type[msgspec.Struct], entries: list[tuple[FieldMap, Affine | None]]
    ) -> None:
        self.model = model
        self._entries = entries
        #: Field -> values left out of built products because the schema rejects them.
        self.rejected: dict[str, int] = {}

    @property
    def tags(self) -> list[str]:
        """Vendor tag names this mapping reads."""
        return [entry.tag for entry, _ in self._entries]

    def apply(self, tag_values: Mapping[str, Any]) -> dict[str, Any]:
        """Field values (converted to the model's units) of the tags present in ``tag_values``.

        Tags absent from ``tag_values`` are left out; a ``None`` value stays ``None``.
        """
        fields: dict[str, Any] = {}
        for entry, transform in self._entries:
            if entry.tag not in tag_values:
                continue
            value = tag_values[entry.tag]
            if transform is not None and value is not None:
                value = transform(float(value))
            fields[entry.field] = value
        return fields

    def build(self, tag_values: Mapping[str, Any]) -> MappedProduct:
        """A model instance from the mapped tag values (unmapped fields stay None).

        Every value is checked against the model's schema (bounds, choices): one it
        rejects (after unit conversion) is left out, never clamped, counted in
        :attr:`rejected`, and makes the product ``uncertain`` with a reason naming the tag.
        """
        product, violations = checked(self.model, self.apply(tag_values))
        tags = {entry.field: entry.tag for entry, _ in self._entries}
        reasons = []
        for v in violations:
            self.rejected[v.field] = self.rejected.get(v.field, 0) + 1
            reasons.append(f"tag {tags[v.field]!r} -> {v.field} = {v.value!r}: {v.error}")
        return MappedProduct(product, "uncertain" if violations else "good", reasons)


def compile_mapping(
    model: type[msgspec.Struct], mapping: Iterable[FieldMap], where: str = "mapping"
) -> Mapper:
    """Check ``mapping`` against ``model``'s declared field units and build a :class:`Mapper`.

    Raises :class:`ConfigError` naming ``where[i].field`` / ``where[i].unit`` for an
    unknown field, a field mapped twice, an unknown unit, a unit of another kind, or a
    unit given for a field that has none (an enumeration such as ``iso20816_zone``).
    """
    units = field_units(model)
    seen: dict[str, int] = {}
    entries: list[tuple[FieldMap, Affine | None]] = []
    for i, entry in enumerate(mapping):
        here = f"{where}[{i}]"
        if not entry.tag:
            raise ConfigError(f"{here}.tag: empty tag name")
        if entry.field not in units:
            raise ConfigError(
                f"{here}.field: {model.__name__} has no field {entry.field!r} "
                f"(fields: {', '.join(units)})"
            )
        if entry.field in seen:
            raise ConfigError(
                f"{here}.field: {entry.field!r} is already mapped by {where}[{seen[entry.field]}]"
            )
        seen[entry.field] = i
        declared = units[entry.field]
        transform: Affine | None = None
        if entry.unit is not None:
            if declared is None:
                raise ConfigError(
                    f"{here}.unit: field {entry.field!r} has no unit, got {entry.unit!r}"
                )
            transform = conversion(entry.unit, declared, f"{here}.unit")
            if transform == Affine(1.0, 0.0):
                transform = None
        entries.append((entry, transform))
    return Mapper(model, entries)


class ReportByException:
    """Decides when a data product is worth publishing (report by exception).

    A state is reported when it is the first, when any numeric field moved by more than
    its deadband (absolute, in the field's unit; 0 = any change) since the last reported
    state, when a non-numeric field or the quality changed, when a field became or stopped
    being None, or when ``max_silence_s`` passed since the last report (a heartbeat that
    also refreshes the retained state's timestamp).
    """

    def __init__(
        self,
        model: type[msgspec.Struct],
        deadbands: Mapping[str, float] | None = None,
        max_silence_s: float = 60.0,
        where: str = "report",
    ) -> None:
        units = field_units(model)
        self.deadbands: dict[str, float] = {}
        for name, band in (deadbands or {}).items():
            if name not in units:
                raise ConfigError(f"{where}.deadbands.{name}: {model.__name__} has no such field")
            if units[name] is None:
                raise ConfigError(f"{where}.deadbands.{name}: field is not numeric")
            if not (band >= 0 and math.isfinite(band)):
                raise ConfigError(f"{where}.deadbands.{name}: {band} must be finite and >= 0")
            self.deadbands[name] = float(band)
        if not max_silence_s > 0:
            raise ConfigError(f"{where}.max_silence_s: {max_silence_s} must be > 0")
        self.max_silence_s = float(max_silence_s)
        self._last: dict[str, Any] | None = None
        self._last_quality: str | None = None
        self._last_time = -math.inf
        self.suppressed = 0

    def offer(self, values: Mapping[str, Any], quality: str, now: float) -> bool:
        """True (and remember the state) if it must be reported at monotonic time ``now``."""
        due = (
            self._last is None
            or quality != self._last_quality
            or now - self._last_time >= self.max_silence_s
            or self._changed(self._last, values)
        )
        if due:
            self._last = dict(values)
            self._last_quality = quality
            self._last_time = now
        else:
            self.suppressed += 1
        return due

    def _changed(self, last: Mapping[str, Any], values: Mapping[str, Any]) -> bool:
        for name in last.keys() | values.keys():
            old, new = last.get(name), values.get(name)
            if old is None or new is None:
                if (old is None) != (new is None):
                    return True
                continue
            if isinstance(new, int | float) and isinstance(old, int | float):
                if math.isnan(new) != math.isnan(old):
                    return True
                if abs(new - old) > self.deadbands.get(name, 0.0):
                    return True
            elif new != old:
                return True
        return False
