"""Cost of the power-sampling thread on latency: p50 with vs without sampling, interleaved, one run.

    python benchmarks/energy.py [--model M.onnx] [--reps 7] [--min-seconds 2] [--threads 1]
                                [--interval-ms 0 (= the sensor's own rate)]

The sensor is a fake hwmon INA226 (power1_input µW, update_interval 2 ms, so the agent samples at
its floor of 5 ms: a worst case) in a temporary sysfs tree; reading it costs what reading a real
sysfs attribute costs. Goal: p50 with / p50 without <= 1.02.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from agent_common import ab_arguments, default_model, through_agent

from edgekit.lab.sysfs_tree import make_fake_sysfs
from edgekit.testing.sensors import make_fake_ina2xx

GOAL = 1.02


def main() -> None:
    parser = ab_arguments(__doc__.splitlines()[0])
    parser.add_argument("--interval-ms", type=float, default=0.0)
    args = parser.parse_args()
    model = args.model or default_model()
    sysfs = make_fake_sysfs(Path(tempfile.mkdtemp(prefix="edgekit-energy-bench-")) / "sys")
    make_fake_ina2xx(sysfs, chip="ina226", power_uw=3_000_000, update_interval_ms=2)
    options = {"sample_interval_ms": args.interval_ms} if args.interval_ms > 0 else {}
    sampled = {"power_sensors": ["ina226"], "sensor_options": options}
    with_p50s, without_p50s, samples = [], [], []
    for rep in range(args.reps):
        # Alternate which goes first so drift on the shared machine hits both equally.
        for sampling in (True, False) if rep % 2 == 0 else (False, True):
            run = through_agent(
                model,
                args.threads,
                100,
                args.min_seconds,
                sysfs,
                sampled if sampling else {"power_sensors": []},
            )
            if sampling:
                energy = run["energy"] or {}
                assert energy.get("sample_count"), f"no sampling happened: {energy}"
                samples.append(energy["sample_count"] / energy["window_s"])
            (with_p50s if sampling else without_p50s).append(run["p50_ms"])
        print(
            f"rep {rep + 1}: sampling p50 {with_p50s[-1]:.4f} ms, no sampling p50 {without_p50s[-1]:.4f} ms"
        )
    ratio = statistics.median(with_p50s) / statistics.median(without_p50s)
    print(
        f"model {model.name}, threads {args.threads}, {args.reps} interleaved reps of "
        f"{args.min_seconds:g} s, {statistics.median(samples):.0f} power samples/s"
    )
    print(
        f"median p50: sampling {statistics.median(with_p50s):.4f} ms, "
        f"no sampling {statistics.median(without_p50s):.4f} ms"
    )
    print(f"with/without p50 ratio: {ratio:.3f}  (goal <= {GOAL})  {'OK' if ratio <= GOAL else 'OVER GOAL'}")


if __name__ == "__main__":
    main()
