"""Sensors read during a benchmark: thermal zones, and power rails / energy counters, each back
end a pure parser next to its reader. Formats and units are cited by key in [brackets]: the
kernel's hwmon ABI and driver documentation, NVIDIA's Jetson power docs, the Linux powercap
docs and the Zeus and jtop projects' readers of the same files."""
