"""``isthmus analyze FILE``: bearing diagnosis, ISO 20816-3 severity and alerts for a recording.

Reads ``.npz``, CSV and WAV (see :mod:`isthmus.recording`; every report states what was read
and where sample rate, rpm, bearing and scale came from). The signal runs through
the same streaming Rust pipeline the gateway uses: anti-aliased decimation to at most
``--max-rate`` (so a 48 kHz record is judged like a 12 kHz one), envelope analysis, and the rule
engine over per-frame features. Needs numpy only; ``--plot`` needs matplotlib.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from isthmus import _core
from isthmus.errors import DiagnosticsError, IsthmusError, SignalError
from isthmus.recording import Recording, load_recording, positive

__all__ = ["Recording", "analyze", "format_report", "load_recording", "record_features"]

Array = npt.NDArray[np.float64]

FAULT_NAMES = ("none", "outer_race", "inner_race", "ball")  # index = the analyzer's fault code
ZONES = "ABCD"


def record_features(x: Array) -> dict[str, float]:
    """Whole-record time-domain features (g): mean, RMS (mean removed), peak, crest factor,
    Pearson kurtosis (3 for Gaussian noise)."""
    mean = float(x.mean())
    d = x - mean
    rms = float(np.sqrt(np.mean(d * d)))
    peak = float(np.max(np.abs(d)))
    kurt = float(np.mean(d**4) / rms**4) if rms > 0 else math.nan
    return {
        "mean_g": mean,
        "rms_g": rms,
        "peak_g": peak,
        "crest_factor": peak / rms if rms > 0 else math.nan,
        "kurtosis": kurt,
    }


GEOMETRY_FLAGS = "--balls N --ball-diameter D --pitch-diameter D [--contact-angle DEG]"
# The widest spectral-kurtosis band is fs/8 (16-point STFT); the squared envelope's usable
# range is 80 % of the band width.
SK_WIDEST_BAND = 1 / 8
USABLE = 0.8


def bearing_help() -> str:
    """How to name a bearing: the catalogue and the geometry flags."""
    names = ", ".join(_core.bearing_catalogue())
    return f"pass --bearing NAME (catalogue: {names}) or the geometry {GEOMETRY_FLAGS}"


def resolve_bearing(
    bearing: str | None, orders: dict[str, float] | None
) -> tuple[str | None, dict[str, float] | None, str | None]:
    """(name, orders, source) of the bearing to analyse; all None when none was given."""
    if bearing is not None and orders is not None:
        raise DiagnosticsError("give --bearing or the geometry flags, not both")
    if bearing is not None:
        entry: dict[str, Any] = dict(_core.bearing(bearing))
        found: dict[str, float] = dict(entry["orders"])
        return str(entry["name"]), found, f"--bearing; catalogue geometry: {entry['source']}"
    if orders is not None:
        return "custom geometry", dict(orders), "geometry flags"
    return None, None, None


def fault_frequency_limit(fs: float, band: tuple[float, float] | None) -> float:
    """Highest envelope frequency the analysis can see (Hz)."""
    width = band[1] - band[0] if band else fs * SK_WIDEST_BAND
    return USABLE * min(width, fs / 2)


def analyze(
    rec: Recording,
    *,
    bearing: str | None = None,
    orders: dict[str, float] | None = None,
    band: tuple[float, float] | None = None,
    max_rate: float = 12000.0,
    group: int = 2,
    foundation: str = "rigid",
    asset: str = "asset",
    chunk: int = 65536,
) -> dict[str, Any]:
    """Run the streaming pipeline over a recording; returns the JSON-ready report.

    Without ``bearing`` (a catalogue name) or ``orders`` the bearing is not analysed: fault
    frequencies of an assumed bearing would give confident verdicts about the wrong one."""
    return _pipeline(
        rec,
        bearing=bearing,
        orders=orders,
        band=band,
        max_rate=max_rate,
        group=group,
        foundation=foundation,
        asset=asset,
        chunk=chunk,
    )[0]


Envelope = tuple[Array, Array]


def _not_analysed(reason: str) -> dict[str, Any]:
    return {"fault": "none", "score_db": None, "frequency_hz": None, "reason": reason}


def _pipeline(
    rec: Recording,
    *,
    bearing: str | None,
    orders: dict[str, float] | None,
    band: tuple[float, float] | None,
    max_rate: float,
    group: int,
    foundation: str,
    asset: str,
    chunk: int,
) -> tuple[dict[str, Any], Array, float, Envelope | None]:
    if chunk < 1:
        raise SignalError(f"--chunk must be >= 1, got {chunk}")
    if not (math.isfinite(max_rate) and max_rate >= 0):
        raise SignalError(f"--max-rate must be >= 0 (0 = no decimation), got {max_rate}")
    factor = max(1, int(rec.sample_rate // max_rate)) if max_rate > 0 else 1
    x = rec.samples
    if factor > 1:
        dec = _core.Decimator(factor)
        x = np.concatenate([dec.process(x[i : i + chunk]) for i in range(0, x.size, chunk)])
        x = x[dec.delay // factor :]  # drop the filter's start-up transient
    fs = rec.sample_rate / factor
    if x.size < 2:
        raise SignalError(f"{rec.inputs.get('file', 'recording')}: too few samples ({x.size})")
    name, fault_orders, bearing_source = resolve_bearing(bearing, orders)
    warnings = list(rec.warnings)
    inputs = dict(rec.inputs)
    inputs.update(
        {
            "bearing": name,
            "bearing_source": bearing_source,
            "analysis_rate_hz": fs,
            "decimation": factor,
            "band_hz": list(band) if band else "spectral kurtosis",
        }
    )
    report: dict[str, Any] = {
        "inputs": inputs,
        "channel": rec.channel,
        "sample_rate_hz": rec.sample_rate,
        "analysis_rate_hz": fs,
        "decimation": factor,
        "duration_s": x.size / fs,
        "rpm": rec.rpm,
        "features": record_features(x),
        "warnings": warnings,
    }
    engine = _core.RuleEngine(asset)
    if rec.calibrated:
        velocity = _core.velocity_rms(x, fs)
        report["iso20816"] = {
            "velocity_rms_mm_s": velocity,
            "zone": _core.iso20816_zone(velocity, group, foundation),
            "group": group,
            "foundation": foundation,
            "boundaries_mm_s": list(_core.iso20816_boundaries(group, foundation)),
        }
        engine.add_zone_change("iso20816_zone", "iso_zone", raise_zone="C")
    else:
        report["iso20816"] = {
            "velocity_rms_mm_s": None,
            "zone": None,
            "reason": "uncalibrated signal (pass --scale): a zone would be made up",
        }
    alerts: list[dict[str, Any]] = []
    report["alerts"] = alerts
    report["active_alerts"] = []
    if fault_orders is None:
        report["diagnosis"] = _not_analysed(f"no bearing given: {bearing_help()}")
        return _json_safe(report), x, fs, None
    rpm = rec.rpm
    shaft = rpm / 60.0 if rpm else None
    report["bearing"] = {
        "name": name,
        "orders": fault_orders,
        "fault_frequencies_hz": (
            {k: v * shaft for k, v in fault_orders.items()} if shaft else None
        ),
    }
    if rpm is None or shaft is None:
        report["diagnosis"] = _not_analysed("no shaft speed: pass --rpm for the bearing diagnosis")
        return _json_safe(report), x, fs, None
    limit = fault_frequency_limit(fs, band)
    series = {
        "BPFO": fault_orders["bpfo"],
        "BPFI": fault_orders["bpfi"],
        "2xBSF": 2 * fault_orders["bsf"],
    }
    top_name, top = max(series.items(), key=lambda kv: kv[1])
    if 2 * top * shaft > limit:
        raise DiagnosticsError(
            f"fault frequencies out of reach: {top_name} = {top * shaft:.6g} Hz at "
            f"{rec.rpm:g} rpm needs two harmonics below the envelope limit {limit:.6g} Hz "
            f"(analysis rate {fs:g} Hz{', band ' + str(band) if band else ''}); check --rpm, "
            f"or raise --max-rate"
        )

    bands: list[tuple[float, float] | None] = [band] if band else candidate_bands(fs)
    runs = [
        _run_band(x, fs, rpm, None if orders else name, orders, b, len(bands), chunk) for b in bands
    ]
    analyzer, cols, diagnosis = choose_band(runs)
    engine.add_bearing("bearing_fault", k_db=0.0, clear_db=-3.0)
    n_frames = cols["start_index"].size
    frame = analyzer.frame
    codes = cols["fault"]
    if n_frames:
        starts = cols["start_index"].astype(np.int64)
        if rec.calibrated:
            cols["iso_zone"] = np.array(
                [
                    ZONES.index(
                        _core.iso20816_zone(
                            _core.velocity_rms(x[s : s + frame], fs), group, foundation
                        )
                    )
                    for s in starts
                ],
                dtype=np.float64,
            )
        # the bearing rule sees each frame's verdict only: its margin over the significance
        # level (dB), so an alert names the fault the verdict names
        for code, fault in enumerate(FAULT_NAMES):
            if code:
                mine = codes == code
                cols[f"{fault}_score_db"] = np.where(mine, cols[f"{fault}_margin_db"], -np.inf)
                cols[f"{fault}_harmonics"] = np.where(mine, cols[f"{fault}_harmonics"], 0.0)
        times = (starts + frame) / fs
        alerts.extend(a.to_dict() for a in engine.evaluate(times, cols))
    if n_frames == 0:
        diagnosis["reason"] = (
            f"record shorter than one analysis frame ({frame} samples = {frame / fs:.2f} s)"
        )
    inputs["frames_averaged"] = diagnosis.get("frames", 0)
    active = engine.active()
    report["diagnosis"] = diagnosis
    report["envelope"] = {
        "frame": frame,
        "frames": n_frames,
        "band_changes": analyzer.band_changes,
        "bands_tried": [list(b) if b else "spectral kurtosis" for b in bands],
    }
    report["active_alerts"] = [a.id for a in active]
    agreement = alert_agreement(diagnosis, codes, [a for a in active if a.rule == "bearing_fault"])
    if agreement:
        diagnosis["alert_note"] = agreement
    return _json_safe(report), x, fs, analyzer.envelope_spectrum()


BandRun = tuple[Any, dict[str, Array], dict[str, Any]]


def candidate_bands(fs: float) -> list[tuple[float, float] | None]:
    """Bands to demodulate: the streaming spectral-kurtosis choice (None) and fixed bands of
    fs/8 and fs/4 at half-width steps. The one whose envelope spectrum shows a bearing series
    best wins; every band's test runs at the false-alarm rate divided by their number."""
    out: list[tuple[float, float] | None] = [None]
    for width in (fs / 8, fs / 4):
        lo = 0.0 + width / 4  # keep off DC
        while lo + width <= 0.5 * fs * 0.98:
            out.append((round(lo, 6), round(lo + width, 6)))
            lo += width / 2
    return out


def _run_band(
    x: Array,
    fs: float,
    rpm: float,
    bearing: str | None,
    orders: dict[str, float] | None,
    band: tuple[float, float] | None,
    bands_tried: int,
    chunk: int,
) -> BandRun:
    analyzer = _core.EnvelopeAnalyzer(
        fs, rpm, bearing, orders=orders, band=band, bands_tried=bands_tried
    )
    batches = [analyzer.feed(x[i : i + chunk]) for i in range(0, x.size, chunk)]
    cols: dict[str, Array] = {
        k: np.concatenate([np.asarray(b[k], dtype=np.float64) for b in batches]) for k in batches[0]
    }
    return analyzer, cols, dict(analyzer.diagnose())


def choose_band(runs: list[BandRun]) -> BandRun:
    """The band whose verdict has the largest margin; bands naming different faults make
    the verdict uncertain (the band, not the bearing, would be deciding)."""
    faults = {r[2]["fault"] for r in runs} & {"outer_race", "inner_race", "ball"}

    def margin(r: BandRun) -> float:
        m = r[2].get("margin_db")
        return float(m) if m is not None and math.isfinite(m) else -math.inf

    named = [r for r in runs if r[2]["fault"] in faults | {"uncertain"}]
    if not named:
        return runs[0]  # the spectral-kurtosis band: the default view
    best = max(named, key=margin)
    if len(faults) > 1:
        analyzer, cols, d = best
        d = dict(d)
        d["note"] = (
            f"bands disagree: {', '.join(sorted(faults))} each win in some band; "
            + (d.get("note") or "")
        ).rstrip("; ")
        d["fault"] = "uncertain"
        cols = dict(cols)
        cols["fault"] = np.where(cols["fault"] > 0, -1.0, cols["fault"])
        return analyzer, cols, d
    return best


def alert_agreement(diagnosis: dict[str, Any], codes: Array, active: list[Any]) -> str:
    """Why the bearing alert and the verdict differ, or "" when they agree."""
    fault = diagnosis["fault"]
    alerted = {a.evidence.get("fault") for a in active}
    if fault in FAULT_NAMES[1:]:
        if fault in alerted:
            return ""
        code = FAULT_NAMES.index(fault)
        run = 0
        for c in codes[::-1]:
            if c != code:
                break
            run += 1
        return (
            f"no alert yet: the alert needs the verdict in 2 consecutive frames, the last "
            f"{run} of {codes.size} frame(s) had it"
        )
    if alerted:
        return (
            f"the alert ({', '.join(sorted(str(a) for a in alerted))}) stays raised until 2 "
            f"frames without it; the final verdict is {fault}"
        )
    return ""


def _json_safe(value: Any) -> Any:
    """NaN and infinity become None so the report is strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return _json_safe(value.item())
    return value


def _fmt(v: Any, spec: str = ".2f") -> str:
    return "-" if v is None else format(v, spec)


def _pct(ratio: float | None) -> str:
    return "-" if ratio is None else f"{100 * (ratio - 1):+.1f} % of nominal"


def format_inputs(inputs: dict[str, Any]) -> list[str]:
    """What was read, and where each physical input came from."""
    i = inputs
    rpm = f"{i['rpm']:g} rpm ({i['rpm_source']})" if i.get("rpm") else "unknown"
    bearing = f"{i['bearing']} [{i['bearing_source']}]" if i.get("bearing") else "none given"
    frames = i.get("frames_averaged")
    return [
        f"input    {i['file']}  [{i['format']}], channel {i['channel']!r}",
        f"         sample rate {i['sample_rate_hz']:g} Hz ({i['sample_rate_source']}), "
        f"{i['samples']} samples = {i['duration_s']:.2f} s"
        + (
            f"; analysed at {i['analysis_rate_hz']:g} Hz (decimated {i['decimation']}x)"
            if i["decimation"] > 1
            else ""
        ),
        f"         rpm {rpm}; bearing {bearing}",
        f"         units {i['units']}"
        + (f"; {frames} envelope frames averaged" if frames is not None else ""),
    ]


def format_report(report: dict[str, Any]) -> str:
    """The report for a person."""
    lines: list[str] = format_inputs(report["inputs"])
    for w in report.get("warnings", []):
        lines.append(f"WARNING  {w}")
    f = report["features"]
    unit = "g" if report["inputs"]["calibrated"] else "FS"
    lines.append(
        f"features RMS {_fmt(f['rms_g'], '.4f')} {unit}  peak {_fmt(f['peak_g'], '.3f')} {unit}"
        f"  crest {_fmt(f['crest_factor'])}  kurtosis {_fmt(f['kurtosis'])}"
    )
    iso = report["iso20816"]
    if iso["zone"] is None:
        lines.append(f"ISO 20816-3  not computed: {iso['reason']}")
    else:
        lines.append(
            f"ISO 20816-3  velocity {_fmt(iso['velocity_rms_mm_s'], '.3f')} mm/s RMS "
            f"(10-1000 Hz)  zone {iso['zone']}  (group {iso['group']}, {iso['foundation']})"
        )
    d = report["diagnosis"]
    if d.get("reason"):
        lines.append(f"bearing  not analysed: {d['reason']}")
    else:
        band = d["band_hz"]
        lines.append(
            f"bearing  {report['bearing']['name']}; envelope band "
            f"{_fmt(band[0], '.0f')}-{_fmt(band[1], '.0f')} Hz (best of "
            f"{len(report['envelope']['bands_tried'])} tried), kurtosis excess "
            f"{_fmt(d['band_kurtosis'])} (+/-{_fmt(d['band_kurtosis_se'])}), {d['frames']} "
            f"frames averaged (worth {_fmt(d['effective_frames'], '.1f')} independent)"
        )
        alpha = next(iter(d["series"].values()))["log10_alpha"]
        lines.append(
            f"  significance: a series needs p <= 10^{_fmt(alpha, '.1f')} (1 % false alarms per "
            f"diagnosis, shared by 3 series x bands); margin = 10 log10(alpha/p)"
        )
        for name, s in d["series"].items():
            lines.append(
                f"  {name:<11} expected {_fmt(s['expected_hz'], '7.2f')} Hz  found "
                f"{_fmt(s['frequency_hz'], '7.2f')} Hz ({_pct(s['ratio'])})  log10 p "
                f"{_fmt(s['log10_p'], '6.1f')}  margin {_fmt(s['margin_db'], '6.0f')} dB  "
                f"harmonics {s['harmonics']}/{s['tested']}  sidebands {s['sidebands']}"
                + ("  significant" if s["significant"] else "")
            )
        verdict = d["fault"].replace("_", " ")
        if d["fault"] == "none":
            lines.append("diagnosis  no bearing fault found")
        elif d["fault"] == "uncertain":
            lines.append("diagnosis  uncertain: bearing lines found, but no one fault for sure")
        else:
            lines.append(
                f"diagnosis  {verdict} fault at {_fmt(d['frequency_hz'])} Hz: margin "
                f"{_fmt(d['margin_db'], '.0f')} dB, {d['harmonics']} harmonics"
            )
        if d.get("note"):
            lines.append(f"  why: {d['note']}")
        if d.get("alert_note"):
            lines.append(f"  alert: {d['alert_note']}")
    if report["alerts"]:
        lines.append("alerts")
        for a in report["alerts"]:
            ev = a["evidence"]
            what = ev.get("fault") or ev.get("zone") or ev.get("feature")
            lines.append(
                f"  {a['state']:<7} {a['rule']} [{a['severity']}] {what} value "
                f"{_fmt(a['value'])} (threshold {_fmt(a['threshold'])}) "
                f"t={_fmt(a['first_time'])}..{_fmt(a['last_time'])} s  id {a['id']}"
            )
    else:
        lines.append("alerts   none")
    return "\n".join(lines)


def plot_report(x: Array, fs: float, report: dict[str, Any], envelope: Envelope, out: str) -> None:
    """Write :func:`plot_figure` to ``out``."""
    fig = plot_figure(x, fs, report, envelope)
    import matplotlib.pyplot as plt

    fig.savefig(out, dpi=110)
    plt.close(fig)


def plot_figure(x: Array, fs: float, report: dict[str, Any], envelope: Envelope) -> Any:
    """Waveform, spectrum (demodulation band shaded) and envelope spectrum with the fault
    frequencies, 1x shaft and the inner-race shaft sidebands marked; the title names file,
    channel, rpm and bearing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # optional extra
        raise SignalError("--plot needs matplotlib: pip install 'isthmus[plot]'") from exc
    inputs = report["inputs"]
    d = report["diagnosis"]
    unit = "g" if inputs["calibrated"] else "full scale"
    fig, axes = plt.subplots(3, 1, figsize=(10, 9))
    fig.suptitle(
        f"{Path(inputs['file']).name} [{inputs['channel']}]: {inputs['rpm']:g} rpm, "
        f"{inputs['bearing']}; diagnosis {d['fault']}",
        fontsize=10,
    )
    t = np.arange(min(x.size, int(fs))) / fs
    axes[0].plot(t, x[: t.size], lw=0.5)
    axes[0].set(xlabel="time (s)", ylabel=f"acceleration ({unit})", title="waveform (first second)")
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size))) * 2 / np.hanning(x.size).sum()
    axes[1].semilogy(np.fft.rfftfreq(x.size, 1 / fs), spec, lw=0.5)
    band = d["band_hz"]
    if band[0] is not None and band[1] is not None:
        axes[1].axvspan(band[0], band[1], color="tab:orange", alpha=0.25, label="demodulation band")
        axes[1].legend(loc="upper right")
    axes[1].set(xlabel="frequency (Hz)", ylabel=f"amplitude ({unit})", title="spectrum")
    freqs, amps = envelope
    axes[2].plot(freqs, amps, lw=0.7)
    ff = report["bearing"]["fault_frequencies_hz"]
    limit = 6 * max(ff["bpfi"], ff["bpfo"], 2 * ff["bsf"])
    if band[0] is not None and band[1] is not None:
        limit = min(limit, band[1] - band[0])  # the squared envelope holds nothing beyond
    axes[2].set_xlim(0, limit)
    shaft = inputs["rpm"] / 60.0
    axes[2].axvline(shaft, color="k", ls=":", lw=1.0, label="1x shaft")
    for key, color, f0 in (
        ("bpfo", "tab:red", ff["bpfo"]),
        ("bpfi", "tab:green", ff["bpfi"]),
        ("2xbsf", "tab:purple", 2 * ff["bsf"]),
    ):
        for h in range(1, 6):
            axes[2].axvline(h * f0, color=color, ls="--", lw=0.8, label=key if h == 1 else None)
    for h in range(1, 4):  # shaft sidebands of the inner-race lines
        for s in (-1, 1):
            axes[2].axvline(
                h * ff["bpfi"] + s * shaft,
                color="tab:green",
                ls=":",
                lw=0.6,
                label="BPFI ± 1x shaft" if h == 1 and s < 0 else None,
            )
    axes[2].legend(loc="upper right", fontsize=8)
    axes[2].set(
        xlabel="frequency (Hz)",
        ylabel=f"squared envelope ({unit}²)",
        title=f"envelope spectrum: {d['fault']} (margin {_fmt(d['margin_db'], '.0f')} dB)",
    )
    fig.tight_layout()
    return fig


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="recording: .npz, .csv or .wav")
    parser.add_argument(
        "--channel", help="npz array (or name[i] of a 2-D array) or WAV channel: name or index"
    )
    parser.add_argument("--column", help="CSV signal column: name or index")
    parser.add_argument("--sample-rate", type=float, help="Hz (overrides the file's)")
    parser.add_argument("--rpm", type=float, help="shaft speed (overrides the file's)")
    parser.add_argument("--bearing", default=None, help="catalogue name, e.g. 6205")
    geo = parser.add_argument_group("bearing geometry (instead of --bearing)")
    geo.add_argument("--balls", type=int)
    geo.add_argument("--ball-diameter", type=float)
    geo.add_argument("--pitch-diameter", type=float)
    geo.add_argument("--contact-angle", type=float, default=0.0, help="degrees")
    parser.add_argument(
        "--band", type=float, nargs=2, metavar=("LO", "HI"), help="fixed demodulation band, Hz"
    )
    parser.add_argument(
        "--max-rate",
        type=float,
        default=12000.0,
        help="decimate by the largest integer factor keeping the rate >= this (Hz; 0 = off)",
    )
    parser.add_argument("--group", type=int, choices=(1, 2), default=2, help="ISO machine group")
    parser.add_argument("--foundation", choices=("rigid", "flexible"), default="rigid")
    parser.add_argument(
        "--scale",
        type=float,
        help="g per file unit: g per full scale (WAV), g per count (integer arrays), a factor "
        "otherwise; without it WAV and integer data are uncalibrated (no ISO zone)",
    )
    parser.add_argument(
        "--sensitivity",
        type=float,
        metavar="MV_PER_G",
        help="sensor sensitivity (mV/g); with --full-scale gives --scale = V x 1000 / (mV/g)",
    )
    parser.add_argument(
        "--full-scale", type=float, metavar="VOLTS", help="ADC input range at full scale (V)"
    )
    parser.add_argument("--asset", default="asset", help="asset name in alerts")
    parser.add_argument("--chunk", type=int, default=65536, help="samples per streamed block")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--plot", metavar="PNG", help="write a plot (needs matplotlib)")


def run(args: argparse.Namespace) -> int:
    geometry = (args.balls, args.ball_diameter, args.pitch_diameter)
    orders: dict[str, float] | None = None
    try:
        if any(v is not None for v in geometry):
            if None in geometry or args.bearing:
                raise DiagnosticsError(
                    "give --bearing, or all of --balls --ball-diameter --pitch-diameter"
                )
            orders = _core.bearing_frequencies(
                args.balls, args.ball_diameter, args.pitch_diameter, args.contact_angle
            )
        if args.plot and Path(args.plot).is_dir():
            raise SignalError(f"--plot {args.plot}: is a directory; give a file name (.png)")
        if args.column is not None and args.channel is not None and args.column != args.channel:
            raise SignalError("give --column (CSV) or --channel, not both")
        scale = args.scale
        if args.sensitivity is not None or args.full_scale is not None:
            mv_per_g = positive(args.sensitivity, "--sensitivity")
            volts = positive(args.full_scale, "--full-scale")
            if mv_per_g is None or volts is None or scale is not None:
                raise SignalError("give --sensitivity with --full-scale, or --scale, not a mix")
            scale = volts * 1000.0 / mv_per_g  # g per full scale
        positive(args.rpm, "--rpm")
        positive(args.sample_rate, "--sample-rate")
        rec = load_recording(
            args.file,
            args.column if args.column is not None else args.channel,
            args.sample_rate,
            args.rpm,
            scale,
        )
        band = (float(args.band[0]), float(args.band[1])) if args.band else None
        report, x, fs, envelope = _pipeline(
            rec,
            bearing=None if orders else args.bearing,
            orders=orders,
            band=band,
            max_rate=args.max_rate,
            group=args.group,
            foundation=args.foundation,
            asset=args.asset,
            chunk=args.chunk,
        )
        report["file"] = str(args.file)
        if args.plot:
            if envelope is None:
                raise SignalError(
                    f"--plot needs the bearing diagnosis: {report['diagnosis']['reason']}"
                )
            plot_report(x, fs, report, envelope, args.plot)
            print(f"isthmus analyze: plot written to {args.plot}", file=sys.stderr)
    except (IsthmusError, OSError, ValueError) as exc:
        print(f"isthmus analyze: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print(format_report(report))
    return 0
