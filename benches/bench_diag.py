"""Envelope analysis + rules for one channel at 25.6 kHz: isthmus vs the same steps in
numpy/scipy, in the same run. Reports the share of one core each needs to keep up."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

import isthmus

FS = 25600.0
RPM = 1800.0
SECONDS = 10.0
CHUNK = 2560  # 0.1 s blocks, as a gateway would hand them over
ORDERS = isthmus.bearing("6205")["orders"]
SK_WINDOWS = (16, 32, 64, 128, 256, 512, 1024)


def signal() -> np.ndarray:
    """Outer-race impacts ringing a 5 kHz resonance, in noise."""
    rng = np.random.default_rng(0)
    n = int(FS * SECONDS)
    x = 0.5 * rng.standard_normal(n)
    ring_t = np.arange(256) / FS
    ring = np.exp(-0.05 * 2 * np.pi * 5000 * ring_t) * np.sin(2 * np.pi * 5000 * ring_t)
    period = 60.0 / RPM / ORDERS["bpfo"]
    for tk in np.arange(0, SECONDS - 0.02, period):
        k = round(float(tk) * FS)
        x[k : k + ring.size] += 2.0 * ring
    return x


X = signal()


def isthmus_pipeline(x: np.ndarray, chunk: int = CHUNK) -> tuple[str, int]:
    analyzer = isthmus.EnvelopeAnalyzer(FS, RPM, "6205")
    engine = isthmus.RuleEngine("bench")
    engine.add_bearing("bearing")
    engine.add_baseline("kurt", "band_kurtosis", learn_frames=4)
    alerts = 0
    for i in range(0, x.size, chunk):
        cols = analyzer.feed(x[i : i + chunk])
        if cols["start_index"].size:
            times = (cols["start_index"] + analyzer.frame) / FS
            alerts += len(engine.evaluate(times, cols))
    return str(analyzer.diagnose()["fault"]), alerts


class NumpyEnvelope:
    """The same steps written with numpy/scipy: STFT spectral kurtosis over the same window
    lengths, FFT band-pass + scipy.signal.hilbert, squared-envelope spectrum averaged over
    frames, harmonic scores against the local median, and per-frame rules in Python."""

    def __init__(self) -> None:
        from scipy.signal import stft

        self.stft = stft
        self.frame = 32768
        self.hop = self.frame // 2
        self.pending = np.zeros(0)
        self.s2: dict[int, np.ndarray] = {}
        self.s4: dict[int, np.ndarray] = {}
        self.n: dict[int, float] = {}
        self.band: tuple[float, float] | None = None
        self.ses: np.ndarray | None = None
        self.count = 0
        self.frames = 0
        self.window = np.hanning(self.frame + 1)[: self.frame]
        self.active = False
        self.streak = 0
        self.alerts = 0

    def feed(self, chunk: np.ndarray) -> None:
        from scipy.signal import hilbert

        self.pending = np.concatenate([self.pending, chunk])
        while self.pending.size >= self.frame:
            fr = self.pending[: self.frame] - self.pending[: self.frame].mean()
            fresh = fr if self.frames == 0 else fr[self.hop :]
            best = None
            min_bw = 3 * ORDERS["bpfi"] * RPM / 60 / 0.8
            for nw in SK_WINDOWS:
                _, _, z = self.stft(fresh, FS, nperseg=nw, noverlap=nw // 2, boundary=None)
                p = np.abs(z) ** 2
                self.s2[nw] = self.s2.get(nw, 0) * 0.875 + p.sum(1)
                self.s4[nw] = self.s4.get(nw, 0) * 0.875 + (p**2).sum(1)
                self.n[nw] = self.n.get(nw, 0) * 0.875 + p.shape[1]
                if 2 * FS / nw < min_bw:
                    continue
                m2 = self.s2[nw] / self.n[nw]
                sk = self.s4[nw] / self.n[nw] / m2**2 - 2
                k = 1 + int(np.argmax(sk[1 : nw // 2]))
                if best is None or sk[k] > best[0]:
                    best = (sk[k], (k - 1) * FS / nw, (k + 1) * FS / nw)
            if self.band is None and best is not None:
                self.band = (best[1], best[2])
            lo, hi = self.band or (0.0, FS / 2)
            spec = np.fft.rfft(fr)
            f = np.fft.rfftfreq(self.frame, 1 / FS)
            spec[(f < lo) | (f > hi)] = 0
            se = np.abs(hilbert(np.fft.irfft(spec, self.frame))) ** 2
            p = np.abs(np.fft.rfft((se - se.mean()) * self.window)) ** 2
            self.count += 1
            a = 1.0 / min(self.count, 32)
            self.ses = p if self.ses is None else self.ses + a * (p - self.ses)
            self.rules(self.score(f))
            self.frames += 1
            self.pending = self.pending[self.hop :]

    def score(self, f: np.ndarray) -> float:
        assert self.ses is not None
        df = f[1]
        best = -np.inf
        for order in ("bpfo", "bpfi", "bsf"):
            f0 = ORDERS[order] * RPM / 60
            dbs = []
            for h in (1, 2, 3):
                fc = h * f0
                lo, hi = int(fc * 0.98 / df), int(np.ceil(fc * 1.02 / df))
                peak = self.ses[lo : hi + 1].max()
                a, b = int((fc - 30) / df), int((fc + 30) / df)
                floor = np.median(np.r_[self.ses[a:lo], self.ses[hi + 1 : b]])
                dbs.append(10 * np.log10(peak / floor))
            best = max(best, float(np.mean(dbs)))
        return best

    def rules(self, score: float) -> None:
        want = score >= 10.0 if not self.active else score < 7.0
        self.streak = self.streak + 1 if want else 0
        if self.streak >= 2:
            self.active = not self.active
            self.streak = 0
            self.alerts += 1


def numpy_pipeline(x: np.ndarray) -> int:
    env = NumpyEnvelope()
    for i in range(0, x.size, CHUNK):
        env.feed(x[i : i + CHUNK])
    return env.alerts


def _share(fn: Any, report: Any, name: str) -> None:
    t0 = time.process_time()
    fn(X)
    cpu = time.process_time() - t0
    report(
        f"diag: {name} share of one core, 1 ch @ 25.6 kHz",
        f"{100 * cpu / SECONDS:.2f} %",
        "CPU time / signal time",
    )


def test_isthmus_envelope_and_rules(benchmark: Any, report: Any) -> None:
    benchmark.group = "diag: envelope + rules, 1 ch 25.6 kHz"
    benchmark.extra_info["role"] = "isthmus"
    benchmark.extra_info["target"] = ">=2"
    fault, alerts = benchmark(isthmus_pipeline, X)
    assert fault == "outer_race" and alerts == 1
    _share(isthmus_pipeline, report, "isthmus envelope+rules")
    _share(lambda x: isthmus_pipeline(x, 256), report, "isthmus envelope+rules, 256-sample chunks")


def test_numpy_scipy_envelope_and_rules(benchmark: Any, report: Any) -> None:
    pytest.importorskip("scipy")
    benchmark.group = "diag: envelope + rules, 1 ch 25.6 kHz"
    benchmark.extra_info["role"] = "baseline"
    alerts = benchmark(numpy_pipeline, X)
    assert alerts == 1
    _share(numpy_pipeline, report, "numpy/scipy envelope+rules")
