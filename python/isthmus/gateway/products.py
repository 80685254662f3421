"""One asset's live state and its data product: per-field quality, staleness, cadence.

Quality rules (documented in docs/gateway.md, "Values and quality"):

- A field's quality is the quality its source reported with the newest reading
  (``good``, ``uncertain``, ``bad``); a value the model's schema rejects is ``uncertain``.
- A field is *stale* when its newest reading is older than its staleness bound:
  ``stale_after_polls`` x the tag's poll interval (Modbus, S7, EtherNet/IP), or x the
  analysis hop for fields the edge analysis computes from a waveform. OPC UA data-change
  fields report by exception and never age; the session marks them bad when the connection drops.
- Derived fields inherit their inputs' quality: ``iso20816_zone`` that of the velocity
  RMS it was computed from, the edge-analysis fields that of the waveform (stale when
  no frame arrives).
- A required field not read yet (start-up) is ``uncertain``.
- Only good, fresh fields carry a value in the product; every other configured field is
  None and listed in the product's ``field_quality`` with ``bad``, ``stale`` or
  ``uncertain``.
- The product is ``bad`` when any required field (every configured one) is bad or
  stale, ``uncertain`` when one is uncertain, else ``good``. Its timestamp is the time
  of its newest reading, never the time of publishing.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from isthmus.gateway import contracts, diagnosis
from isthmus.gateway.config import Asset
from isthmus.gateway.metrics import Metrics
from isthmus.gateway.vibration import VibrationMonitor, VibrationResult

log = logging.getLogger("isthmus.gateway")

GOOD, UNCERTAIN, BAD, STALE = "good", "uncertain", "bad", "stale"
#: Fields the edge analysis of a waveform computes.
ANALYSIS_FIELDS = ("vibration_velocity_rms_mm_s", "iso20816_zone", "bearing_diagnosis")
#: Derived field -> the field it is computed from (it inherits that field's quality).
DERIVED_FROM = {"iso20816_zone": "vibration_velocity_rms_mm_s"}


MessageKind = Literal["product", "features", "alert", "status"]


@dataclass
class Message:
    """One thing to publish; ``asset`` is None for gateway-level messages (status).

    ``payload`` is a msgspec Struct of the UNS models (``Pump``, ``VibrationFeatures``,
    ``Alert``) or, for status, a dict.
    """

    kind: MessageKind
    asset: AssetRuntime | None
    payload: Any
    quality: str = "good"
    time: float = field(default_factory=time.time)

    @property
    def timestamp(self) -> datetime:
        return datetime.fromtimestamp(self.time, UTC)


class AssetRuntime:
    """The live state of one asset: field values with quality and age, vibration, alerts."""

    def __init__(
        self,
        asset: Asset,
        rings: dict[str, Any],
        metrics: Metrics | None = None,
        *,
        max_silence_s: float = 60.0,
    ) -> None:
        from isthmus.uns.topics import AssetPath
        from isthmus.uns.units import ReportByException

        self.asset = asset
        self.name = asset.name
        self.model = contracts.model_class(asset.model)
        self.path = AssetPath(
            enterprise=asset.isa95.enterprise,
            site=asset.isa95.site,
            area=asset.isa95.area,
            line=asset.isa95.line,
            asset=asset.asset_id,
        )
        deadbands = {k: m.deadband for k, m in asset.fields.items() if m.deadband is not None}
        self.report = ReportByException(
            self.model, deadbands, max_silence_s, f"assets.{asset.name}"
        )
        self.values: dict[str, Any] = {}
        self.quality: dict[str, str] = {}
        #: When each field's newest reading was taken (source time, else gateway time).
        self.value_time: dict[str, float] = {}
        #: When each field's newest reading arrived (gateway time; staleness runs on it).
        self.seen: dict[str, float] = {}
        #: Field -> seconds after which its reading is stale (absent: never ages).
        self.stale_after: dict[str, float] = {}
        self.reasons: dict[str, str] = {}
        self.required: set[str] = set(asset.fields)
        self.product: Any | None = None
        self.product_quality = GOOD
        self.product_time = 0.0
        self.vibration = VibrationMonitor(asset, rings) if asset.vibration is not None else None
        if self.vibration is not None:
            self.required.update(ANALYSIS_FIELDS)
            if not asset.vibration or not asset.vibration.bearing:
                self.required.discard("bearing_diagnosis")  # nothing to diagnose: not a field
        elif "vibration_velocity_rms_mm_s" in asset.fields:
            self.required.add("iso20816_zone")
        self.last_vibration: VibrationResult | None = None
        self.rules = diagnosis.RuleSet(asset)
        #: Zone and rules computed from tag values (no waveform; a velocity tag or rules).
        self.tag_fed_severity = self.vibration is None and (
            "vibration_velocity_rms_mm_s" in asset.fields or bool(asset.rules)
        )
        self.active_alerts: dict[str, Any] = {}
        self.alert_log: list[Any] = []
        self.features_published_at = 0.0
        #: Time of the newest reading the rules have seen (tag-fed assets).
        self.rules_time = -math.inf
        self.metrics = metrics or Metrics()
        #: Field -> why its current value is left out of the product (schema violation).
        self.rejected: dict[str, str] = {}
        self.dirty = False
        #: Monotonic time the product was last handed on (cadence: min interval).
        self.published_at = -math.inf
        #: Gateway time of that (for the heartbeat deadline).
        self.published_wall = 0.0

    # --- values ----------------------------------------------------------------------------

    def set_value(
        self,
        name: str,
        value: Any,
        quality: str,
        when: float,
        *,
        seen: float | None = None,
        reason: str | None = None,
        checked: bool = False,
    ) -> None:
        """Record a field's reading; one the model's schema rejects is kept out of the product.

        A value out of the field's bounds or choices (a stopped pump's -0.02 Hz as
        -1.2 rpm, a zone "E") would make the published payload fail its own schema: it
        is marked ``uncertain``, counted, and logged when the field starts failing.
        Never clamped. ``checked=True``: the caller validated it already (in bulk).
        """
        if quality == GOOD and value is not None and not checked:
            if type(value) is float and not math.isfinite(value):
                value, quality, reason = None, BAD, "non-finite value"
            else:
                violation = self._violation(name, value)
                if violation is not None:
                    quality = UNCERTAIN
                    reason = violation
        elif quality == GOOD and value is None:
            quality = BAD
            reason = reason or "no value"
        if quality == GOOD:
            self.rejected.pop(name, None)
        self.values[name] = value
        self.quality[name] = quality
        self.value_time[name] = when
        self.seen[name] = when if seen is None else seen
        if reason is not None:
            self.reasons[name] = reason
        else:
            self.reasons.pop(name, None)
        self.dirty = True

    def _violation(self, name: str, value: Any) -> str | None:
        from isthmus.uns.models import check_field

        violation = check_field(self.model, name, value)
        if violation is None:
            return None
        mapping = self.asset.fields.get(name)
        source = f"tag {mapping.tag!r}" if mapping is not None else "the edge analysis"
        why = f"{source} -> {name} = {value!r}: {violation.error}"
        self.metrics.rejected.labels(self.name, name).inc()
        if name not in self.rejected:
            log.warning("value left out of the data product: %s", why, extra={"asset": self.name})
        self.rejected[name] = why
        return why

    # --- quality ---------------------------------------------------------------------------

    def field_state(self, name: str, now: float) -> str:
        """``good``, ``uncertain``, ``bad`` or ``stale`` for a field at gateway time ``now``."""
        source = DERIVED_FROM.get(name)
        if source is not None and source in self.quality:
            inherited = self.field_state(source, now)
            if inherited != GOOD:
                return inherited
        quality = self.quality.get(name)
        if quality is None:
            return UNCERTAIN  # not read yet (start-up): unknown, not known to be bad
        if quality != GOOD:
            return quality
        bound = self.stale_after.get(name)
        if bound is not None and now - self.seen.get(name, -math.inf) > bound:
            return STALE
        return GOOD

    def field_states(self, now: float) -> dict[str, str]:
        """Every known or required field's state."""
        return {name: self.field_state(name, now) for name in self.required | self.quality.keys()}

    def overall_quality(self, now: float | None = None) -> str:
        """bad if a required field is bad or stale, uncertain if any field is not good."""
        states = self.field_states(time.time() if now is None else now)
        return _product_quality(states, self.required)

    def next_expiry(self) -> float | None:
        """The gateway time at which the next good field turns stale (None: none will)."""
        times = [
            self.seen[n] + bound
            for n, bound in self.stale_after.items()
            if self.quality.get(n) == GOOD and n in self.seen
        ]
        return min(times) if times else None

    # --- the product -----------------------------------------------------------------------

    def build_product(self, now: float | None = None) -> Any:
        """The data product now: good, fresh fields carry values; the rest are listed."""
        product, _quality, _shown = self.snapshot(now)
        return product

    def snapshot(self, now: float | None = None) -> tuple[Any, str, dict[str, Any]]:
        """(product, quality, the fields shown) at gateway time ``now``."""
        now = time.time() if now is None else now
        states = self.field_states(now)
        shown = {k: self.values[k] for k, s in states.items() if s == GOOD and k in self.values}
        flagged = {k: s for k, s in states.items() if s != GOOD}
        # The constructor, not msgspec.convert: values were checked as they arrived
        # (bounds compiled per model), and convert would turn an int64 into a float.
        product = self.model(**shown, field_quality=flagged)
        return product, _product_quality(states, self.required), shown

    def reading_time(self) -> float:
        """Time of the newest reading among the product's fields (0 when none)."""
        return max(self.value_time.values(), default=0.0)


def _product_quality(states: dict[str, str], required: set[str]) -> str:
    if any(states.get(n) in (BAD, STALE) for n in required):
        return BAD
    if any(s != GOOD for s in states.values()):
        return UNCERTAIN
    return GOOD


__all__ = ["ANALYSIS_FIELDS", "DERIVED_FROM", "AssetRuntime", "Message"]
