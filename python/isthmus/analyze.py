"""``isthmus analyze FILE``: bearing diagnosis, ISO 20816-3 severity and alerts for a recording.

Reads ``.npz`` (arrays ``de`` or ``--channel``, ``sample_rate``, ``rpm``), CSV (one column per
channel, optional header and ``time`` column) and WAV (PCM or float). The signal runs through
the same streaming Rust pipeline the gateway uses: anti-aliased decimation to at most
``--max-rate`` (so a 48 kHz record is judged like a 12 kHz one), envelope analysis, and the rule
engine over per-frame features. Needs numpy only; ``--plot`` needs matplotlib.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from isthmus import _core
from isthmus.errors import DiagnosticsError, SignalError

Array = npt.NDArray[np.float64]

FAULT_NAMES = ("none", "outer_race", "inner_race", "ball")
ZONES = "ABCD"


@dataclass(frozen=True)
class Recording:
    """One channel of acceleration (g) with its sample rate (Hz) and shaft speed (rpm) if known."""

    samples: Array
    sample_rate: float
    rpm: float | None
    channel: str


def _scalar(value: Any) -> float:
    return float(np.asarray(value, dtype=np.float64).ravel()[0])


def _load_npz(path: Path, channel: str | None) -> tuple[Array, float | None, float | None, str]:
    with np.load(path) as data:
        name = channel or ("de" if "de" in data else None)
        if name is None:
            arrays = [k for k in data.files if data[k].size > 1]
            if len(arrays) != 1:
                raise SignalError(f"{path}: pick a channel with --channel (arrays: {arrays})")
            name = arrays[0]
        if name not in data:
            raise SignalError(f"{path}: no array {name!r} (arrays: {data.files})")
        x = np.asarray(data[name], dtype=np.float64).ravel()
        fs = _scalar(data["sample_rate"]) if "sample_rate" in data else None
        rpm = _scalar(data["rpm"]) if "rpm" in data else None
    return x, fs, rpm, name


def _load_csv(path: Path, channel: str | None) -> tuple[Array, float | None, str]:
    with path.open() as fh:
        first = fh.readline()
    cells = [c.strip() for c in first.split(",")]
    try:
        [float(c) for c in cells]
        header: list[str] | None = None
    except ValueError:
        header = [c.lower() for c in cells]
    table = np.loadtxt(path, delimiter=",", skiprows=1 if header else 0, ndmin=2)
    names = header or [str(i) for i in range(table.shape[1])]
    fs = None
    if "time" in names:
        t = table[:, names.index("time")]
        step = float(np.median(np.diff(t))) if t.size > 1 else 0.0
        fs = 1.0 / step if step > 0 else None
    data_cols = [n for n in names if n != "time"]
    name = channel.lower() if channel else data_cols[0] if data_cols else ""
    if name not in names or name == "time":
        raise SignalError(f"{path}: no column {name!r} (columns: {data_cols})")
    return np.ascontiguousarray(table[:, names.index(name)], dtype=np.float64), fs, name


def _load_wav(path: Path, channel: str | None) -> tuple[Array, float, str]:
    index = int(channel) if channel else 0
    try:
        with wave.open(str(path), "rb") as w:
            n_ch, width, fs = w.getnchannels(), w.getsampwidth(), w.getframerate()
            raw = w.readframes(w.getnframes())
    except wave.Error as exc:  # e.g. IEEE float WAV, which the stdlib reader refuses
        raise SignalError(f"{path}: unsupported WAV ({exc}); use 8/16/24/32-bit PCM") from exc
    if not 0 <= index < n_ch:
        raise SignalError(f"{path}: channel {index} out of range (file has {n_ch})")
    if width == 3:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3)
        ints = (b[:, 0].astype(np.int32) | (b[:, 1].astype(np.int32) << 8)) | (
            b[:, 2].astype(np.int8).astype(np.int32) << 16
        )
        x = ints.astype(np.float64) / float(1 << 23)
    elif width == 1:
        x = (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128.0) / 128.0
    elif width == 2:
        x = np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768.0
    elif width == 4:
        x = np.frombuffer(raw, dtype="<i4").astype(np.float64) / 2147483648.0
    else:
        raise SignalError(f"{path}: unsupported sample width {width} bytes")
    return np.ascontiguousarray(x.reshape(-1, n_ch)[:, index]), float(fs), str(index)


def load_recording(
    path: str | Path,
    channel: str | None = None,
    sample_rate: float | None = None,
    rpm: float | None = None,
    scale: float = 1.0,
) -> Recording:
    """Load one channel. Explicit ``sample_rate``/``rpm`` override what the file says;
    ``scale`` converts file units to g (e.g. WAV full scale)."""
    p = Path(path)
    suffix = p.suffix.lower()
    file_rpm: float | None = None
    if suffix == ".npz":
        x, fs, file_rpm, name = _load_npz(p, channel)
    elif suffix in (".csv", ".txt"):
        x, fs, name = _load_csv(p, channel)
    elif suffix == ".wav":
        x, fs_wav, name = _load_wav(p, channel)
        fs = fs_wav
    else:
        raise SignalError(f"{p}: unknown file type {suffix!r} (use .npz, .csv or .wav)")
    fs = sample_rate or fs
    if not fs or fs <= 0:
        raise SignalError(f"{p}: the sample rate is unknown; pass --sample-rate")
    if x.size == 0 or not np.all(np.isfinite(x)):
        raise SignalError(f"{p}: channel {name!r} is empty or holds NaN/inf")
    return Recording(x * scale, float(fs), rpm or file_rpm, name)


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


def analyze(
    rec: Recording,
    *,
    bearing: str | None = "SKF 6205-2RS JEM",
    orders: dict[str, float] | None = None,
    band: tuple[float, float] | None = None,
    max_rate: float = 12000.0,
    group: int = 2,
    foundation: str = "rigid",
    asset: str = "asset",
    chunk: int = 65536,
) -> dict[str, Any]:
    """Run the streaming pipeline over a recording; returns the JSON-ready report."""
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
        raise SignalError(f"chunk must be >= 1, got {chunk}")
    factor = max(1, int(rec.sample_rate // max_rate)) if max_rate > 0 else 1
    x = rec.samples
    if factor > 1:
        dec = _core.Decimator(factor)
        x = np.concatenate([dec.process(x[i : i + chunk]) for i in range(0, x.size, chunk)])
        x = x[dec.delay // factor :]  # drop the filter's start-up transient
    fs = rec.sample_rate / factor

    velocity = _core.velocity_rms(x, fs)
    zone = _core.iso20816_zone(velocity, group, foundation)
    report: dict[str, Any] = {
        "channel": rec.channel,
        "sample_rate_hz": rec.sample_rate,
        "analysis_rate_hz": fs,
        "decimation": factor,
        "duration_s": x.size / fs,
        "rpm": rec.rpm,
        "features": record_features(x),
        "iso20816": {
            "velocity_rms_mm_s": velocity,
            "zone": zone,
            "group": group,
            "foundation": foundation,
            "boundaries_mm_s": list(_core.iso20816_boundaries(group, foundation)),
        },
    }
    engine = _core.RuleEngine(asset)
    engine.add_zone_change("iso20816_zone", "iso_zone", raise_zone="C")
    alerts: list[dict[str, Any]] = []
    if rec.rpm is None or rec.rpm <= 0:
        report["diagnosis"] = {
            "fault": "none",
            "score_db": None,
            "frequency_hz": None,
            "reason": "no shaft speed: pass --rpm for the bearing diagnosis",
        }
        report["alerts"] = alerts
        return _json_safe(report), x, fs, None

    analyzer = _core.EnvelopeAnalyzer(fs, rec.rpm, bearing, orders=orders, band=band)
    engine.add_bearing("bearing_fault")
    batches = [analyzer.feed(x[i : i + chunk]) for i in range(0, x.size, chunk)]
    cols: dict[str, Array] = {
        k: np.concatenate([np.asarray(b[k], dtype=np.float64) for b in batches]) for k in batches[0]
    }
    n_frames = cols["start_index"].size
    if n_frames:
        starts = cols["start_index"].astype(np.int64)
        frame = analyzer.frame
        zones = np.array(
            [
                ZONES.index(
                    _core.iso20816_zone(_core.velocity_rms(x[s : s + frame], fs), group, foundation)
                )
                for s in starts
            ],
            dtype=np.float64,
        )
        cols["iso_zone"] = zones
        times = (starts + frame) / fs
        events = engine.evaluate(times, cols)
        alerts = [a.to_dict() for a in events]
    diagnosis = analyzer.diagnose()
    if n_frames == 0:
        diagnosis["reason"] = (
            f"record shorter than one analysis frame ({analyzer.frame} samples "
            f"= {analyzer.frame / fs:.2f} s)"
        )
    shaft = rec.rpm / 60.0
    o = analyzer.orders
    report["bearing"] = {
        "name": bearing,
        "orders": o,
        "fault_frequencies_hz": {k: v * shaft for k, v in o.items()},
    }
    report["diagnosis"] = diagnosis
    report["envelope"] = {
        "frame": analyzer.frame,
        "frames": n_frames,
        "band_changes": analyzer.band_changes,
    }
    report["alerts"] = alerts
    report["active_alerts"] = [a.id for a in engine.active()]
    return _json_safe(report), x, fs, analyzer.envelope_spectrum()


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


def format_report(report: dict[str, Any]) -> str:
    """The report for a person."""
    lines: list[str] = []
    f = report["features"]
    lines.append(
        f"signal   {report['duration_s']:.1f} s at {report['analysis_rate_hz']:.0f} Hz"
        + (f" (decimated {report['decimation']}x)" if report["decimation"] > 1 else "")
        + (f", {report['rpm']:.0f} rpm" if report["rpm"] else "")
    )
    lines.append(
        f"features RMS {_fmt(f['rms_g'], '.4f')} g  peak {_fmt(f['peak_g'], '.3f')} g  "
        f"crest {_fmt(f['crest_factor'])}  kurtosis {_fmt(f['kurtosis'])}"
    )
    iso = report["iso20816"]
    lines.append(
        f"ISO 20816-3  velocity {_fmt(iso['velocity_rms_mm_s'], '.3f')} mm/s RMS (10-1000 Hz)"
        f"  zone {iso['zone']}  (group {iso['group']}, {iso['foundation']})"
    )
    d = report["diagnosis"]
    if d.get("reason"):
        lines.append(f"bearing  not analysed: {d['reason']}")
    else:
        band = d["band_hz"]
        lines.append(
            f"bearing  {report['bearing']['name'] or 'custom geometry'}; envelope band "
            f"{_fmt(band[0], '.0f')}-{_fmt(band[1], '.0f')} Hz, kurtosis excess "
            f"{_fmt(d['band_kurtosis'])}, {d['frames']} frames averaged"
        )
        for name, s in d["series"].items():
            lines.append(
                f"  {name:<11} expected {_fmt(s['expected_hz'], '7.2f')} Hz  found "
                f"{_fmt(s['frequency_hz'], '7.2f')} Hz  score {_fmt(s['score_db'], '5.1f')} dB  "
                f"harmonics {s['harmonics']}  sidebands {s['sidebands']}"
            )
        verdict = d["fault"].replace("_", " ")
        if d["fault"] == "none":
            lines.append("diagnosis  no bearing fault found")
        else:
            lines.append(
                f"diagnosis  {verdict} fault: {_fmt(d['score_db'], '.1f')} dB at "
                f"{_fmt(d['frequency_hz'])} Hz with {d['harmonics']} harmonics"
            )
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
    """Waveform, spectrum and envelope spectrum with the fault frequencies marked."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # optional extra
        raise SignalError("--plot needs matplotlib: pip install 'isthmus[plot]'") from exc
    fig, axes = plt.subplots(3, 1, figsize=(10, 9))
    t = np.arange(min(x.size, int(fs))) / fs
    axes[0].plot(t, x[: t.size], lw=0.5)
    axes[0].set(xlabel="time (s)", ylabel="acceleration (g)", title="waveform (first second)")
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size))) * 2 / np.hanning(x.size).sum()
    axes[1].semilogy(np.fft.rfftfreq(x.size, 1 / fs), spec, lw=0.5)
    axes[1].set(xlabel="frequency (Hz)", ylabel="amplitude (g)", title="spectrum")
    freqs, amps = envelope
    d = report["diagnosis"]
    axes[2].plot(freqs, amps, lw=0.7)
    band = d["band_hz"]
    limit = 6 * report["bearing"]["fault_frequencies_hz"]["bpfi"]
    if band[0] is not None and band[1] is not None:
        limit = min(limit, band[1] - band[0])  # the squared envelope holds nothing beyond
    axes[2].set_xlim(0, limit)
    colors = {"bpfo": "tab:red", "bpfi": "tab:green", "bsf": "tab:purple"}
    for key, color in colors.items():
        f0 = report["bearing"]["fault_frequencies_hz"][key]
        for h in range(1, 6):
            axes[2].axvline(h * f0, color=color, ls="--", lw=0.8, label=key if h == 1 else None)
    axes[2].legend()
    axes[2].set(
        xlabel="frequency (Hz)",
        ylabel="squared envelope (g²)",
        title=f"envelope spectrum: {d['fault']} ({_fmt(d['score_db'], '.1f')} dB)",
    )
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="recording: .npz, .csv or .wav")
    parser.add_argument("--channel", help="array/column name (npz, csv) or index (wav)")
    parser.add_argument("--sample-rate", type=float, help="Hz, where the file has none")
    parser.add_argument("--rpm", type=float, help="shaft speed (overrides the file's)")
    parser.add_argument("--bearing", default=None, help="catalogue name (default SKF 6205-2RS JEM)")
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
    parser.add_argument("--scale", type=float, default=1.0, help="file units to g")
    parser.add_argument("--asset", default="asset", help="asset name in alerts")
    parser.add_argument("--chunk", type=int, default=65536, help="samples per streamed block")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--plot", metavar="PNG", help="write a plot (needs matplotlib)")


def run(args: argparse.Namespace) -> int:
    geometry = (args.balls, args.ball_diameter, args.pitch_diameter)
    orders: dict[str, float] | None = None
    bearing: str | None = args.bearing
    try:
        if any(v is not None for v in geometry):
            if None in geometry or bearing:
                raise DiagnosticsError(
                    "give --bearing, or all of --balls --ball-diameter --pitch-diameter"
                )
            orders = _core.bearing_frequencies(
                args.balls, args.ball_diameter, args.pitch_diameter, args.contact_angle
            )
        elif bearing is None:
            bearing = "SKF 6205-2RS JEM"
        rec = load_recording(args.file, args.channel, args.sample_rate, args.rpm, args.scale)
        band = (float(args.band[0]), float(args.band[1])) if args.band else None
        report, x, fs, envelope = _pipeline(
            rec,
            bearing=None if orders else bearing,
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
                raise SignalError("--plot needs the shaft speed (--rpm)")
            plot_report(x, fs, report, envelope, args.plot)
    except (OSError, ValueError) as exc:
        print(f"isthmus analyze: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print(format_report(report))
    return 0
