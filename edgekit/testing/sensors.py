"""Fake power and thermal sensors and vendor tools, in the exact formats the kernel and the
vendor tools produce (docs/reference/sensor-formats.md names the sources; the [KEYS] below refer
to it), each with a known ground truth for the tests to check.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from edgekit.lab.sysfs_tree import write_sysfs_value

# ---------------------------------------------------------------------------------------------
# Fake power sensors, in the kernel's and firmware's formats (docs/reference/sensor-formats.md;
# the [KEYS] name the sources listed there).
# ---------------------------------------------------------------------------------------------

# `vcgencmd pmic_read_adc` on a Pi 5: names right-aligned, current lines (A) then voltage lines (V),
# indices in parentheses that differ between a rail's two lines [ZEUS test fixture]. The first
# lines are the recorded excerpt; the remaining rails follow the same format with made-up values.
PI5_PMIC_ADC = """\
 3V7_WL_SW_A current(0)=0.09368929A
   3V3_SYS_A current(1)=0.08783370A
   1V8_SYS_A current(2)=0.17567280A
  DDR_VDD2_A current(3)=0.02049453A
  DDR_VDDQ_A current(4)=0.00000000A
   1V1_SYS_A current(5)=0.18738300A
   0V8_SW_A current(6)=0.30443210A
  VDD_CORE_A current(7)=6.22421000A
   3V3_DAC_A current(17)=0.00048840A
   3V3_ADC_A current(18)=0.00042735A
   0V8_AON_A current(16)=0.00408900A
      HDMI_A current(22)=0.01684500A
 3V7_WL_SW_V volt(8)=3.69977600V
   3V3_SYS_V volt(9)=3.31003300V
   1V8_SYS_V volt(10)=1.80024400V
  DDR_VDD2_V volt(11)=1.10720400V
  DDR_VDDQ_V volt(12)=0.60463960V
   1V1_SYS_V volt(13)=1.10427300V
   0V8_SW_V volt(14)=0.80219780V
  VDD_CORE_V volt(15)=0.86173300V
   3V3_DAC_V volt(20)=3.31195300V
   3V3_ADC_V volt(21)=3.31319300V
   0V8_AON_V volt(19)=0.80219780V
      HDMI_V volt(23)=5.12454000V
     EXT5V_V volt(24)=5.09066000V
      BATT_V volt(25)=0.00000000V
"""
# `nvpmodel -q` [JTOP nvpmodel.py]: the mode name, then its id (maybe after NVPM WARN lines).
NVPMODEL_QUERY = "NV Power Mode: MAXN\n0\n"


def _symlink(link: Path, target: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(target)


def _hwmon_dir(root: Path, index: int, bus: str, client: str, chip: str) -> Path:
    """hwmonN under its I2C client, with class/hwmon/hwmonN and hwmonN/device links [HW-ABI]."""
    client_dir = root / "devices/platform/bus@0/3180000.i2c" / bus / client
    directory = client_dir / "hwmon" / f"hwmon{index}"
    directory.mkdir(parents=True, exist_ok=True)
    write_sysfs_value(client_dir, "name", chip)  # the I2C client's name, as jtop finds it [alumet#212]
    write_sysfs_value(directory, "name", chip)
    _symlink(directory / "device", Path("../.."))
    _symlink(root / "class/hwmon" / f"hwmon{index}", directory)
    return directory


def make_fake_ina3221(
    root: Path,
    rails: Sequence[tuple[str, int, int]] = (
        ("VDD_IN", 5056, 1104),
        ("VDD_CPU_GPU_CV", 5048, 311),
        ("VDD_SOC", 5040, 257),
    ),
    *,
    index: int = 3,
    bus: str = "i2c-1",
    client: str = "1-0040",
    update_interval_ms: int = 7,
) -> Path:
    """Upstream hwmon ina3221 as on JetPack 5/6 (Orin Nano: VDD_IN, VDD_CPU_GPU_CV, VDD_SOC):
    inN_label, inN_input bus mV, currN_input mA, no power files; in4..6 shunt µV and the in7
    sum [INA3221-DOC][DT234]. rails: (label, mV, mA); an empty label leaves the channel unlabelled.
    Returns the hwmon directory."""
    directory = _hwmon_dir(root, index, bus, client, "ina3221")
    for channel, (label, millivolts, milliamps) in enumerate(rails, start=1):
        if label:
            write_sysfs_value(directory, f"in{channel}_label", label)
        write_sysfs_value(directory, f"in{channel}_input", millivolts)
        write_sysfs_value(directory, f"curr{channel}_input", milliamps)
        write_sysfs_value(directory, f"in{channel + 3}_input", milliamps * 5)  # µV over 5000 µΩ
        write_sysfs_value(directory, f"shunt{channel}_resistor", 5000)
    write_sysfs_value(directory, "in7_label", "sum of shunt voltages")
    write_sysfs_value(directory, "in7_input", sum(rail[2] * 5 for rail in rails))
    write_sysfs_value(directory, "update_interval", update_interval_ms)
    write_sysfs_value(directory, "samples", 1)
    return directory


def set_ina3221_rail(directory: Path, channel: int, millivolts: int, milliamps: int) -> None:
    """Change one channel's reading (a test's ground truth: P = mV x mA)."""
    write_sysfs_value(directory, f"in{channel}_input", millivolts)
    write_sysfs_value(directory, f"curr{channel}_input", milliamps)


def make_fake_ina2xx(
    root: Path,
    *,
    chip: str = "ina226",
    index: int = 2,
    bus: str = "i2c-1",
    client: str = "1-0041",
    power_uw: int = 2500000,
    bus_mv: int = 5000,
    update_interval_ms: int | None = 2,
) -> Path:
    """hwmon ina2xx (INA219/226/...): in0 shunt mV, in1 bus mV, curr1 mA, power1_input µW,
    shunt_resistor µΩ; update_interval only on INA226/230/231 [INA2XX]. Returns the hwmon dir."""
    directory = _hwmon_dir(root, index, bus, client, chip)
    write_sysfs_value(directory, "in0_input", 2)
    write_sysfs_value(directory, "in1_input", bus_mv)
    write_sysfs_value(directory, "curr1_input", round(power_uw / bus_mv))
    write_sysfs_value(directory, "power1_input", power_uw)
    write_sysfs_value(directory, "shunt_resistor", 10000)
    if update_interval_ms is not None:
        write_sysfs_value(directory, "update_interval", update_interval_ms)
    return directory


def make_fake_ina3221x(
    root: Path,
    rails: Sequence[tuple[str, int, int]] = (
        ("POM_5V_IN", 5080, 620),
        ("POM_5V_GPU", 5072, 0),
        ("POM_5V_CPU", 5072, 17),
    ),
    *,
    client: str = "6-0040",
    device: str = "iio:device0",
) -> Path:
    """JetPack 4 IIO ina3221x (Nano: POM_5V_IN, POM_5V_GPU, POM_5V_CPU): rail_name_k,
    in_voltage{k}_input mV, in_current{k}_input mA, in_power{k}_input mW = int(mV x mA / 1000)
    [NV-INA][JTOP]. Returns the IIO device directory."""
    directory = root / "bus/i2c/drivers/ina3221x" / client / device
    write_sysfs_value(directory, "name", "ina3221x")
    for channel, (rail, millivolts, milliamps) in enumerate(rails):
        write_sysfs_value(directory, f"rail_name_{channel}", rail)
        write_sysfs_value(directory, f"in_voltage{channel}_input", millivolts)
        write_sysfs_value(directory, f"in_current{channel}_input", milliamps)
        write_sysfs_value(directory, f"in_power{channel}_input", millivolts * milliamps // 1000)
    write_sysfs_value(directory, "running_mode", 1)
    return directory


def make_fake_rapl(
    root: Path,
    zones: Sequence[tuple[str, str, int, int]] = (
        ("intel-rapl:0", "package-0", 123456789, 262143328850),
        ("intel-rapl:0:0", "core", 23456789, 262143328850),
        ("intel-rapl:0:1", "uncore", 3456789, 262143328850),
        ("intel-rapl-mmio:0", "package-0", 999999, 262143328850),
    ),
) -> dict[str, Path]:
    """powercap zones (id, name, energy_uj, max_energy_range_uj) under devices/virtual/powercap,
    linked from class/powercap; subzone ids in hex; the intel-rapl-mmio mirror of package-0
    included by default [PCAP][PCAP-C][RAPL-C; max range from raplcap#14]. Returns id -> zone dir."""
    found: dict[str, Path] = {}
    for zone_id, name, energy_uj, max_range_uj in zones:
        control = zone_id.split(":", 1)[0]
        parts = zone_id.split(":")
        nested = [":".join(parts[: i + 1]) for i in range(1, len(parts))]
        directory = root / "devices/virtual/powercap" / control / Path(*nested)
        write_sysfs_value(directory, "name", name)
        write_sysfs_value(directory, "energy_uj", energy_uj)
        write_sysfs_value(directory, "max_energy_range_uj", max_range_uj)
        write_sysfs_value(directory, "enabled", 1)
        write_sysfs_value(directory, "constraint_0_name", "long_term")
        _symlink(root / "class/powercap" / zone_id, directory)
        found[zone_id] = directory
    return found


def make_fake_tool(bin_dir: Path, name: str, outputs: dict[str, str], *, failure: str = "") -> Path:
    """A fake `vcgencmd` / `nvpmodel` / `jetson_clocks` on PATH that prints recorded outputs: the
    text in <bin_dir>/<name>.<first argument without its leading dashes>.out (tests may rewrite
    it while it runs). An unknown command, or `failure` set, prints that text to stderr and
    exits 255 as vcgencmd does on a VCHI error [VCG]."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for command, text in outputs.items():
        (bin_dir / f"{name}.{command.lstrip('-')}.out").write_text(text)
    script = bin_dir / name
    error = failure or "VCHI initialization failed"
    script.write_text(
        "#!/bin/sh\n"
        'command="${1#-}"; command="${command#-}"\n'  # -q and --show alike
        f'out="$(dirname "$0")/{name}.$command.out"\n'
        + (f"echo '{error}' >&2; exit 255\n" if failure else "")
        + f'if [ -f "$out" ]; then cat "$out"; else echo \'{error}\' >&2; exit 255; fi\n'
    )
    script.chmod(0o755)
    return script


def make_fake_tegrastats(bin_dir: Path, lines: list[str]) -> Path:
    """A fake `tegrastats` on PATH: run as `tegrastats --interval MS`, it prints the recorded
    `lines` (docs/reference/jetson-tools.md) one every MS milliseconds, the first after one
    interval as tegrastats does, cycling until stopped; it writes its arguments to
    <bin_dir>/tegrastats.args."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    (bin_dir / "tegrastats.lines").write_text("".join(line.rstrip("\n") + "\n" for line in lines))
    script = bin_dir / "tegrastats"
    script.write_text(
        "#!/bin/sh\n"
        'here="$(dirname "$0")"\n'
        'echo "$@" > "$here/tegrastats.args"\n'
        'ms=1000; if [ "$1" = "--interval" ]; then ms="$2"; fi\n'
        'seconds="$(awk "BEGIN { print $ms / 1000 }")"\n'
        "while :; do\n"
        '  while IFS= read -r line; do sleep "$seconds"; printf "%s\\n" "$line"\n'
        '  done < "$here/tegrastats.lines"\n'
        "done\n"
    )
    script.chmod(0o755)
    return script
