"""Bearing geometry, catalogue, ISO 20816-3 zones, velocity RMS and the decimator."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import isthmus


def test_cwru_drive_end_orders_match_the_published_values() -> None:
    o = isthmus.bearing_frequencies(9, 0.3126, 1.537, 0.0)
    assert o == pytest.approx(
        {"bpfi": 5.4152, "bpfo": 3.5848, "ftf": 0.39828, "bsf": 2.357}, abs=1e-3
    )


def test_catalogue_entries_carry_their_geometry_and_source() -> None:
    cat = isthmus.bearing_catalogue()
    assert {"SKF 6205-2RS JEM", "SKF 6203-2RS JEM"} <= set(cat)
    fe = isthmus.bearing("6203")
    assert fe["balls"] == 8
    assert fe["ball_diameter_mm"] == pytest.approx(0.2656 * 25.4)
    assert fe["pitch_diameter_mm"] == pytest.approx(1.122 * 25.4)
    assert "CWRU" in str(fe["source"])
    # CWRU's published fan-end multiples
    assert fe["orders"] == pytest.approx(
        {"bpfi": 4.9469, "bpfo": 3.0530, "ftf": 0.3817, "bsf": 1.9940}, abs=1e-3
    )


def test_contact_angle_lowers_the_ratio() -> None:
    flat = isthmus.bearing_frequencies(16, 0.331, 2.815, 0.0)
    angled = isthmus.bearing_frequencies(16, 0.331, 2.815, 15.17)
    assert angled["bpfo"] > flat["bpfo"] and angled["bpfi"] < flat["bpfi"]
    assert angled["bpfo"] + angled["bpfi"] == pytest.approx(16.0)


@pytest.mark.parametrize(
    ("args", "match"),
    [((2, 1.0, 5.0), "balls"), ((9, 2.0, 1.0), "pitch"), ((9, 1.0, 5.0, 95.0), "angle")],
)
def test_bad_geometry(args: tuple, match: str) -> None:
    with pytest.raises(isthmus.DiagnosticsError, match=match):
        isthmus.bearing_frequencies(*args)


@pytest.mark.parametrize(
    ("group", "foundation", "bounds"),
    [
        (1, "rigid", (2.3, 4.5, 7.1)),
        (1, "flexible", (3.5, 7.1, 11.0)),
        (2, "rigid", (1.4, 2.8, 4.5)),
        (2, "flexible", (2.3, 4.5, 7.1)),
    ],
)
def test_iso20816_zones(group: int, foundation: str, bounds: tuple[float, ...]) -> None:
    assert isthmus.iso20816_boundaries(group, foundation) == bounds
    b1, b2, b3 = bounds
    cases = [(0.0, "A"), (b1 * 0.99, "A"), (b1, "B"), (b2 * 0.99, "B"), (b2, "C"), (b3, "D")]
    for v, zone in cases:
        assert isthmus.iso20816_zone(v, group, foundation) == zone


def test_iso20816_rejects_bad_input() -> None:
    with pytest.raises(isthmus.DiagnosticsError, match="group"):
        isthmus.iso20816_zone(1.0, 3)
    with pytest.raises(isthmus.DiagnosticsError, match="foundation"):
        isthmus.iso20816_zone(1.0, 1, "soft")
    with pytest.raises(isthmus.DiagnosticsError, match="non-negative"):
        isthmus.iso20816_zone(float("nan"))


def test_decimator_passes_the_band_and_removes_aliases() -> None:
    from scipy.signal import welch

    fs = 48000.0
    rng = np.random.default_rng(0)
    t = np.arange(int(fs * 2)) / fs
    # 1 kHz stays; 20 kHz would fold onto 4 kHz at 12 kHz without the low-pass
    x = (
        np.sin(2 * np.pi * 1000 * t)
        + np.sin(2 * np.pi * 20000 * t)
        + 1e-3 * rng.normal(size=t.size)
    )
    d = isthmus.Decimator(4)
    y = d.process(x)[d.delay // 4 + 50 :]
    f, p = welch(y, 12000.0, nperseg=4096)
    at = lambda hz: p[np.argmin(np.abs(f - hz))]  # noqa: E731
    assert 10 * np.log10(at(1000.0) / at(4000.0)) > 75.0
    assert np.sqrt(np.mean(y**2)) == pytest.approx(np.sqrt(0.5), rel=2e-3)


@settings(max_examples=20, deadline=None)
@given(chunks=st.lists(st.integers(1, 700), min_size=1, max_size=30), factor=st.integers(2, 6))
def test_decimator_output_does_not_depend_on_chunking(chunks: list[int], factor: int) -> None:
    x = np.random.default_rng(sum(chunks)).normal(size=sum(chunks))
    whole = isthmus.Decimator(factor).process(x)
    d = isthmus.Decimator(factor)
    parts, i = [], 0
    for c in chunks:
        parts.append(d.process(x[i : i + c]))
        i += c
    np.testing.assert_allclose(np.concatenate(parts), whole, rtol=0, atol=1e-12)


def test_decimator_rejects_bad_factor() -> None:
    with pytest.raises(isthmus.SignalError, match="factor"):
        isthmus.Decimator(0)


def test_zone_from_the_spectrum_velocity() -> None:
    """A 50 Hz vibration of 3.5 mm/s RMS: zone C for a group-2 machine on a rigid foundation."""
    fs, f = 12000.0, 50.0
    t = np.arange(int(fs * 4)) / fs
    peak_g = 3.5 * np.sqrt(2) * 2 * np.pi * f / 9806.65
    v = isthmus.velocity_rms(peak_g * np.sin(2 * np.pi * f * t), fs)
    assert v == pytest.approx(3.5, rel=0.01)
    assert isthmus.iso20816_zone(v, 2, "rigid") == "C"
    assert isthmus.iso20816_zone(v, 1, "rigid") == "B"
