"""Reading one vibration channel from ``.npz``, CSV or WAV, and saying exactly what was read.

Nothing is guessed silently: a file with several candidate channels needs ``--channel`` (or
``--column`` for CSV), the sample rate comes from the file, a flag or the timestamps (and the
report says which), and a signal without a known scale is marked uncalibrated. Every problem
is a :class:`~isthmus.errors.SignalError` whose message names the file.
"""

from __future__ import annotations

import csv
import io
import math
import re
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from isthmus.errors import SignalError

Array = npt.NDArray[np.float64]

# Sample rates data loggers actually use; an inferred rate snaps to one only within 0.1 %.
COMMON_RATES = (
    1000, 1024, 2000, 2048, 2560, 4000, 4096, 5000, 5120, 6000, 6400, 8000, 8192, 10000,
    10240, 11025, 12000, 12800, 16000, 16384, 20000, 20480, 22050, 24000, 25000, 25600, 32000,
    32768, 40000, 44100, 48000, 50000, 51200, 64000, 65536, 96000, 100000, 102400, 128000,
    192000, 200000, 204800,
)  # fmt: skip
SNAP_TOLERANCE = 1e-3
SAMPLE_RATE_KEYS = ("sample_rate", "fs", "sampling_rate", "sample_rate_hz", "sr")
RPM_KEYS = ("rpm", "speed_rpm", "shaft_rpm")
# time-column names: "t", "time", "timestamp", "seconds", with a unit suffix or not
TIME_NAME = re.compile(r"^(t|time|timestamp|times|sec|secs|seconds|elapsed)([\s_\[(].*)?$")
INDEX_NAME = re.compile(r"^(index|idx|n|sample|samples|sample_index|i)$")
TIME_UNITS = {"ms": 1e-3, "msec": 1e-3, "us": 1e-6, "µs": 1e-6, "usec": 1e-6, "ns": 1e-9}


@dataclass(frozen=True)
class Recording:
    """One channel of acceleration with its sample rate (Hz), shaft speed (rpm) if known,
    and where each of them came from (``inputs``, shown in every report)."""

    samples: Array
    sample_rate: float
    rpm: float | None
    channel: str
    calibrated: bool = True
    inputs: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


def positive(value: float | None, flag: str) -> float | None:
    """A flag that must be a finite positive number when given."""
    if value is None:
        return None
    if not (math.isfinite(value) and value > 0):
        raise SignalError(f"{flag} must be a finite number > 0, got {value}")
    return float(value)


def _scalar(data: Any, key: str, path: Path) -> float:
    arr = np.asarray(data[key])
    if arr.size != 1 or not np.issubdtype(arr.dtype, np.number):
        raise SignalError(f"{path}: {key!r} must be one number, got shape {arr.shape}")
    return float(arr.ravel()[0])


def _pick(names: list[str], wanted: str | None, path: Path, what: str) -> int:
    """Index of the channel ``wanted`` (a name or an index) among ``names``."""
    listing = ", ".join(f"{i}: {n}" for i, n in enumerate(names))
    if wanted is None:
        if len(names) == 1:
            return 0
        raise SignalError(
            f"{path}: {len(names)} {what}s ({listing}); pick one with "
            f"--{'column' if what == 'column' else 'channel'} NAME|INDEX"
        )
    lowered = [n.lower() for n in names]
    if wanted.lower() in lowered:
        return lowered.index(wanted.lower())
    try:
        index = int(wanted)
    except ValueError:
        index = -1
    if 0 <= index < len(names):
        return index
    raise SignalError(f"{path}: no {what} {wanted!r} ({listing})")


def _load_npz(path: Path, channel: str | None) -> dict[str, Any]:
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: np.asarray(data[k]) for k in data.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as exc:
        raise SignalError(f"{path}: not a readable .npz archive ({exc})") from exc
    if not arrays:
        raise SignalError(f"{path}: the .npz archive holds no arrays")
    out: dict[str, Any] = {"format": "npz"}
    for keys, name in ((SAMPLE_RATE_KEYS, "sample_rate"), (RPM_KEYS, "rpm")):
        for key in keys:
            if key in arrays:
                out[name] = _scalar(arrays, key, path)
                break
    signals = {
        k: a
        for k, a in arrays.items()
        if a.size > 1 and np.issubdtype(a.dtype, np.number) and k not in SAMPLE_RATE_KEYS
    }
    # a time array (by name, 1-D, increasing) gives the sample rate and is not a channel
    for key in [k for k, a in signals.items() if TIME_NAME.match(k.lower()) and a.ndim == 1]:
        t = np.asarray(signals.pop(key), dtype=np.float64)
        if "sample_rate" not in out:
            unit = re.search(r"(ms|msec|us|µs|usec|ns)\b", key.lower())
            out["sample_rate"], out["sample_rate_source"] = infer_rate(
                t, TIME_UNITS[unit.group(1)] if unit else 1.0, path, key
            )
    # a 2-D array is several channels: list each row (or column) as name[i]
    channels: list[tuple[str, Array]] = []
    for name, a in signals.items():
        if a.ndim == 1:
            channels.append((name, a))
        elif a.ndim == 2:
            axis = 0 if a.shape[0] <= a.shape[1] else 1
            for i in range(a.shape[axis]):
                channels.append((f"{name}[{i}]", np.take(a, i, axis=axis)))
        else:
            raise SignalError(f"{path}: array {name!r} has {a.ndim} dimensions (1 or 2 expected)")
    if not channels:
        raise SignalError(f"{path}: no signal array (arrays: {sorted(arrays)})")
    names = [n for n, _ in channels]
    wanted = channel
    if channel is not None and channel in signals and signals[channel].ndim == 2:
        wanted = None  # a 2-D array named alone is still ambiguous
        names = [n for n in names if n.startswith(channel + "[")]
        channels = [c for c in channels if c[0] in names]
    index = _pick(names, wanted, path, "channel")
    name, raw = channels[index]
    out["channel"] = name
    out["integer"] = bool(np.issubdtype(raw.dtype, np.integer))
    out["samples"] = np.ascontiguousarray(raw, dtype=np.float64)
    return out


def _sniff_delimiter(text: str) -> str | None:
    sample = "\n".join(text.splitlines()[:20])
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t").delimiter
    except csv.Error:
        return None  # whitespace-separated (or a single column)


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _uniform_step(t: Array) -> bool:
    """Strictly increasing with one step: what a time (or index) column looks like."""
    if t.size < 3:
        return False
    d = np.diff(t)
    step = (t[-1] - t[0]) / (t.size - 1)
    return bool(np.all(d > 0) and np.max(np.abs(d - step)) <= 0.5 * step)


def infer_rate(t: Array, scale: float, path: Path, column: str) -> tuple[float, str]:
    """Sample rate from timestamps: least squares over all of them, snapped to a common rate
    within 0.1 %. Rounded timestamps (e.g. to 1 us) cost nothing this way."""
    i = np.arange(t.size, dtype=np.float64)
    step = float(np.polyfit(i, t * scale, 1)[0])
    if not step > 0:
        raise SignalError(f"{path}: time column {column!r} does not increase")
    residual = t * scale - (t[0] * scale + step * i)
    worst = int(np.argmax(np.abs(residual)))
    if abs(residual[worst]) > 0.5 * step:
        raise SignalError(
            f"{path}: timestamps in {column!r} are not uniformly spaced (row {worst + 1} is "
            f"{residual[worst] / step:+.1f} samples off a uniform grid); resample or cut the gap"
        )
    rate = 1.0 / step
    near = min(COMMON_RATES, key=lambda r: abs(r - rate))
    if abs(near - rate) <= SNAP_TOLERANCE * near:
        return float(near), f"inferred from {column!r} ({rate:.2f} Hz, snapped to {near})"
    return rate, f"inferred from {column!r} (least squares over {t.size} timestamps)"


def _load_csv(path: Path, column: str | None) -> dict[str, Any]:
    try:
        text = path.read_text()
    except UnicodeDecodeError as exc:
        raise SignalError(f"{path}: not a text CSV file ({exc.reason})") from exc
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise SignalError(f"{path}: the CSV file is empty")
    delimiter = _sniff_delimiter("\n".join(lines))

    def split(line: str) -> list[str]:
        return [c.strip() for c in (line.split(delimiter) if delimiter else line.split())]

    first = split(lines[0])
    header = None if all(_is_number(c) for c in first) else [c.strip("\"'") for c in first]
    body = lines[1:] if header else lines
    try:
        table = np.loadtxt(io.StringIO("\n".join(body)), delimiter=delimiter, ndmin=2)
    except ValueError as exc:
        raise SignalError(f"{path}: unreadable CSV ({exc})") from exc
    if table.shape[0] == 0:
        raise SignalError(f"{path}: the CSV file has a header but no rows")
    names = header or [f"column {i}" for i in range(table.shape[1])]
    if len(names) != table.shape[1]:
        raise SignalError(
            f"{path}: header has {len(names)} names but rows have {table.shape[1]} values"
        )
    out: dict[str, Any] = {"format": f"csv (delimiter {delimiter or 'whitespace'!r})"}
    time_col: int | None = None
    index_cols: list[int] = []
    for i, name in enumerate(names):
        low = name.lower()
        col = table[:, i]
        uniform = _uniform_step(col)
        if TIME_NAME.match(low) and col.size > 1 and np.all(np.diff(col) > 0):
            time_col = i if time_col is None else time_col
        elif INDEX_NAME.match(low) or (
            uniform and np.all(col == np.round(col)) and np.all(np.diff(col) == 1)
        ):
            index_cols.append(i)
        elif uniform and time_col is None:
            time_col = i  # unnamed, but strictly increasing with one step: time
    if time_col is not None:
        name = names[time_col]
        unit = re.search(r"(ms|msec|us|µs|usec|ns)\b", name.lower())
        scale = TIME_UNITS[unit.group(1)] if unit else 1.0
        out["sample_rate"], out["sample_rate_source"] = infer_rate(
            table[:, time_col], scale, path, name
        )
        out["time_column"] = name
    candidates = [i for i in range(len(names)) if i != time_col and i not in index_cols]
    if column is not None and column.lower() in (n.lower() for n in names):
        chosen = [n.lower() for n in names].index(column.lower())
        if chosen == time_col:
            raise SignalError(f"{path}: column {column!r} is the time column")
    else:
        cand_names = [names[i] for i in candidates]
        if not cand_names:
            raise SignalError(f"{path}: no signal column besides time/index ({names})")
        if column is not None and _is_number(column):
            index = int(float(column))
            if not 0 <= index < len(names) or index == time_col:
                raise SignalError(
                    f"{path}: column index {column} is out of range or the time column "
                    f"(columns: {', '.join(f'{i}: {n}' for i, n in enumerate(names))})"
                )
            chosen = index
        else:
            chosen = candidates[_pick(cand_names, column, path, "column")]
    out["channel"] = names[chosen]
    out["samples"] = np.ascontiguousarray(table[:, chosen], dtype=np.float64)
    out["integer"] = False
    return out


WAVE_FORMAT_PCM = 1
WAVE_FORMAT_FLOAT = 3
WAVE_FORMAT_EXTENSIBLE = 0xFFFE


def _load_wav(path: Path, channel: str | None) -> dict[str, Any]:
    """RIFF/WAVE with PCM (8/16/24/32-bit) or IEEE float (32/64-bit) samples, any channels."""
    raw = path.read_bytes()
    if len(raw) < 12 or raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        raise SignalError(f"{path}: not a RIFF/WAVE file")
    pos, fmt, data, truncated = 12, None, None, False
    while pos + 8 <= len(raw):
        cid, size = raw[pos : pos + 4], struct.unpack("<I", raw[pos + 4 : pos + 8])[0]
        body = raw[pos + 8 : pos + 8 + size]
        if cid == b"fmt ":
            if len(body) < 16:
                raise SignalError(f"{path}: WAV 'fmt ' chunk is truncated")
            sub = body[24:26] if len(body) >= 26 else b""  # WAVE_FORMAT_EXTENSIBLE subformat
            fmt = (*struct.unpack("<HHIIHH", body[:16]), sub)
        elif cid == b"data":
            data, truncated = body, len(body) < size
            break
        pos += 8 + size + (size & 1)
    if fmt is None or data is None:
        raise SignalError(f"{path}: WAV file without {'fmt ' if fmt is None else 'data'} chunk")
    tag, n_ch, rate, _, block, bits, sub = fmt
    if tag == WAVE_FORMAT_EXTENSIBLE and len(sub) == 2:
        tag = struct.unpack("<H", sub)[0]
    if n_ch < 1 or rate < 1 or bits not in (8, 16, 24, 32, 64) or block != n_ch * bits // 8:
        raise SignalError(f"{path}: WAV header is inconsistent ({n_ch} ch, {bits} bit, {rate} Hz)")
    frames = len(data) // block
    if frames == 0:
        raise SignalError(f"{path}: the WAV file holds no samples")
    buf = data[: frames * block]
    if tag == WAVE_FORMAT_FLOAT and bits in (32, 64):
        x = np.frombuffer(buf, dtype="<f4" if bits == 32 else "<f8").astype(np.float64)
    elif tag == WAVE_FORMAT_PCM and bits == 24:
        b = np.frombuffer(buf, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        x = ((b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)) << 8 >> 8).astype(np.float64) / 2**23
    elif tag == WAVE_FORMAT_PCM and bits in (8, 16, 32):
        if bits == 8:
            x = (np.frombuffer(buf, dtype=np.uint8).astype(np.float64) - 128.0) / 128.0
        else:
            x = np.frombuffer(buf, dtype=f"<i{bits // 8}").astype(np.float64) / 2.0 ** (bits - 1)
    else:
        raise SignalError(f"{path}: unsupported WAV encoding (format {tag}, {bits} bit)")
    names = [str(i) for i in range(n_ch)]
    index = _pick(names, channel, path, "channel")
    out: dict[str, Any] = {
        "format": f"wav ({'float' if tag == WAVE_FORMAT_FLOAT else 'PCM'} {bits} bit, {n_ch} ch)",
        "sample_rate": float(rate),
        "channel": names[index],
        "samples": np.ascontiguousarray(x.reshape(-1, n_ch)[:, index]),
        "integer": True,  # full-scale units until a --scale says what full scale is
    }
    if truncated:
        out["warning"] = f"data chunk truncated: read {frames} of {size // block} frames"
    return out


def load_recording(
    path: str | Path,
    channel: str | None = None,
    sample_rate: float | None = None,
    rpm: float | None = None,
    scale: float | None = None,
) -> Recording:
    """Load one channel. ``sample_rate``/``rpm`` given here override the file's (with a warning
    when they disagree); ``scale`` converts file units to g (g per full scale for WAV, g per
    count for integer arrays, a plain factor otherwise). Without a scale, WAV and integer data
    are uncalibrated."""
    p = Path(path)
    sample_rate = positive(sample_rate, "--sample-rate")
    rpm = positive(rpm, "--rpm")
    scale = positive(scale, "--scale")
    suffix = p.suffix.lower()
    if not p.is_file():
        raise SignalError(f"{p}: no such file")
    try:
        if suffix == ".npz":
            got = _load_npz(p, channel)
        elif suffix in (".csv", ".txt", ".tsv"):
            got = _load_csv(p, channel)
        elif suffix == ".wav":
            got = _load_wav(p, channel)
        else:
            raise SignalError(f"{p}: unknown file type {suffix!r} (use .npz, .csv or .wav)")
    except OSError as exc:
        raise SignalError(f"{p}: cannot read ({exc.strerror or exc})") from exc
    warnings: list[str] = [got["warning"]] if "warning" in got else []
    file_fs: float | None = got.get("sample_rate")
    fs_source = got.get("sample_rate_source", "file")
    if file_fs is not None and not (math.isfinite(file_fs) and file_fs > 0):
        raise SignalError(f"{p}: the file's sample rate {file_fs} is not a positive number")
    if sample_rate is not None:
        if file_fs is not None and abs(sample_rate / file_fs - 1) > 1e-3:
            warnings.append(
                f"--sample-rate {sample_rate:g} Hz contradicts the file ({file_fs:g} Hz, "
                f"{fs_source}); using the flag"
            )
        fs, fs_source = sample_rate, "--sample-rate"
    elif file_fs is not None:
        fs = file_fs
    else:
        raise SignalError(f"{p}: the sample rate is unknown; pass --sample-rate")
    file_rpm: float | None = got.get("rpm")
    if file_rpm is not None and not (math.isfinite(file_rpm) and file_rpm > 0):
        warnings.append(f"the file's rpm {file_rpm} is not a positive number; ignored")
        file_rpm = None
    rpm_source = None
    if rpm is not None:
        if file_rpm is not None and abs(rpm / file_rpm - 1) > 1e-3:
            warnings.append(
                f"--rpm {rpm:g} contradicts the file ({file_rpm:g} rpm); using the flag"
            )
        rpm_source = "--rpm"
    elif file_rpm is not None:
        rpm, rpm_source = file_rpm, "file"
    x: Array = got["samples"]
    name = got["channel"]
    if x.size == 0 or not np.all(np.isfinite(x)):
        raise SignalError(f"{p}: channel {name!r} is empty or holds NaN/inf")
    fmt = got["format"]
    if scale is not None:
        calibrated, units = True, f"g (file units x {scale:g})"
        x = x * scale
    elif got["integer"]:
        calibrated = False
        units = (
            "uncalibrated: amplitudes in full-scale units"
            if fmt.startswith("wav")
            else ("uncalibrated: amplitudes in ADC counts")
        )
    else:
        calibrated, units = True, "g (as stored in the file)"
    inputs = {
        "file": str(p),
        "format": fmt,
        "channel": name,
        "sample_rate_hz": fs,
        "sample_rate_source": fs_source,
        "rpm": rpm,
        "rpm_source": rpm_source,
        "units": units,
        "calibrated": calibrated,
        "samples": int(x.size),
        "duration_s": x.size / fs,
    }
    if "time_column" in got:
        inputs["time_column"] = got["time_column"]
    return Recording(
        np.ascontiguousarray(x, dtype=np.float64),
        float(fs),
        rpm,
        name,
        calibrated,
        inputs,
        tuple(warnings),
    )
