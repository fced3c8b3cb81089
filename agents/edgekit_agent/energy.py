"""Energy per inference from an idle window and the timed window: pure summaries of samples."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from edgekit_agent.sampler import PowerSampler, Sample
from edgekit_agent.sensors.readers import PowerReader

MIN_WINDOW_SAMPLES = 3


def sample_powers(samples: List[Sample], kind: str) -> List[float]:
    """Watts per sample (power sensors) or per interval between reads (counters: dE/dt)."""
    if kind != "energy":
        return [value for _, value in samples]
    pairs = zip(samples, samples[1:])  # noqa: RUF007 - itertools.pairwise is Python 3.10+
    return [(b[1] - a[1]) / (b[0] - a[0]) for a, b in pairs if b[0] > a[0]]


def window_power(samples: List[Sample], kind: str) -> Tuple[float, float]:
    """(time-weighted mean watts over the samples' span, its standard error).

    Power samples: trapezoid integration / span; standard error = sample std / sqrt(n).
    Energy counters: the exact counter difference / span; standard error from the scatter of
    the per-interval powers (dE/dt between consecutive reads) / sqrt(intervals)."""
    span = samples[-1][0] - samples[0][0]
    if span <= 0:
        raise ValueError("samples span no time")
    pairs = list(zip(samples, samples[1:]))  # noqa: RUF007 - itertools.pairwise is Python 3.10+
    if kind == "energy":
        mean = (samples[-1][1] - samples[0][1]) / span
    else:
        mean = sum((a[1] + b[1]) / 2.0 * (b[0] - a[0]) for a, b in pairs) / span
    values = sample_powers(samples, kind)
    count = len(values)
    average = sum(values) / count
    variance = sum((v - average) ** 2 for v in values) / (count - 1) if count > 1 else 0.0
    return mean, (variance / count) ** 0.5


def implausible_samples(idle: List[Sample], busy: List[Sample], kind: str) -> Optional[str]:
    """Why the samples cannot be a rail's power, or None: negative watts (a power reading, or a
    counter's per-interval power) are a miswired, faulty or misread sensor; a rail that reads
    exactly 0 W (a counter that does not advance) for the whole timed window, while the board ran
    inferences, is unpowered, gated or disconnected (e.g. a Jetson GPU rail during a CPU run).
    Either way the energy is unknown, never 0 mJ or a negative value."""
    for name, samples in (("idle", idle), ("timed", busy)):
        values = sample_powers(samples, kind)
        if values and min(values) < 0:
            return "the sensor read negative power (%.4g W) in the %s window: miswired or faulty" % (
                min(values),
                name,
            )
    if kind == "energy" and busy[-1][1] == busy[0][1]:
        return "the energy counter did not advance during the timed window: an unpowered or stalled sensor"
    if kind != "energy" and all(value == 0 for _, value in busy):
        return (
            "the rail read exactly 0 W for the whole timed window while the board ran: "
            "it is unpowered, gated or disconnected"
        )
    return None


def energy_summary(
    idle: List[Sample],
    busy: List[Sample],
    *,
    kind: str,
    window_s: float,
    inferences: int,
    resolution: float,
) -> Dict[str, Any]:
    """Energy per inference above idle, from an idle window and the timed window (pure).

    mj_per_inference = (P_busy - P_idle) x window_s / inferences x 1000, where P are
    time-weighted means. Its uncertainty (one standard uncertainty) combines, per mean, the
    standard error of the samples and the sensor's quantisation (one step / sqrt(12), which
    averaging does not shrink: a steady reading rounds the same way every time; for counters
    a step of the counter at each of the two endpoint reads), then the two means in quadrature
    (idle and busy are independent windows). Readings are autocorrelated, so the standard
    error is a floor rather than a bound."""
    if inferences < 1 or window_s <= 0:
        return {"mj_per_inference": None, "reason": "no timed inferences"}
    if len(idle) < MIN_WINDOW_SAMPLES or len(busy) < MIN_WINDOW_SAMPLES:
        return {
            "mj_per_inference": None,
            "reason": "too few power samples (idle %d, busy %d; need >= %d each): the sensor is "
            "slower than the window, lengthen --min-seconds" % (len(idle), len(busy), MIN_WINDOW_SAMPLES),
            "sample_count": len(busy),
            "idle_sample_count": len(idle),
        }
    implausible = implausible_samples(idle, busy, kind)
    if implausible is not None:
        return {
            "mj_per_inference": None,
            "reason": implausible,
            "sample_count": len(busy),
            "idle_sample_count": len(idle),
        }
    try:
        busy_w, busy_se = window_power(busy, kind)
        idle_w, idle_se = window_power(idle, kind)
    except ValueError as exc:
        return {"mj_per_inference": None, "reason": "power samples unusable: %s" % exc}
    uncertainties = []
    for samples, se in ((busy, busy_se), (idle, idle_se)):
        span = samples[-1][0] - samples[0][0]
        quantum = resolution * 2**0.5 / span if kind == "energy" else resolution / 12**0.5
        uncertainties.append((se**2 + quantum**2) ** 0.5)
    above_idle_w = busy_w - idle_w
    scale = window_s / inferences * 1000.0
    return {
        "mj_per_inference": above_idle_w * scale,
        "mj_per_inference_uncertainty": (uncertainties[0] ** 2 + uncertainties[1] ** 2) ** 0.5 * scale,
        "total_energy_j": busy_w * window_s,
        "energy_above_idle_j": above_idle_w * window_s,
        "avg_power_w": busy_w,
        "idle_power_w": idle_w,
        "avg_power_uncertainty_w": uncertainties[0],
        "idle_power_uncertainty_w": uncertainties[1],
        "window_s": window_s,
        "idle_window_s": idle[-1][0] - idle[0][0],
        "inferences": inferences,
        "sample_count": len(busy),
        "idle_sample_count": len(idle),
        "method": "counter-difference" if kind == "energy" else "trapezoid",
    }


def measured_energy(
    reader: Optional[PowerReader],
    sampler: Optional[PowerSampler],
    specs: List[str],
    failures: List[str],
    idle: List[Sample],
    busy: List[Sample],
    window_s: float,
    inferences: int,
) -> Dict[str, Any]:
    """The bench reply's "energy": a summary, or mj_per_inference None with the reason."""
    if reader is None or sampler is None:
        reason = "; ".join(failures) if failures else "profile names no power sensor"
        return {"mj_per_inference": None, "reason": reason, "sensors_tried": specs}
    summary: Dict[str, Any] = dict(reader.describe(), skipped=failures)
    if sampler.error is not None:
        summary.update(
            mj_per_inference=None, reason="%s failed during the run: %s" % (reader.name, sampler.error)
        )
        return summary
    summary.update(
        energy_summary(
            idle,
            busy,
            kind=reader.kind,
            window_s=window_s,
            inferences=inferences,
            resolution=reader.resolution,
        )
    )
    return summary
