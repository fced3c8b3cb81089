"""lab: emulated ARM boards (`edgekit lab`) — an aarch64 Debian userland under qemu user-mode
emulation, with its own Python, numpy, onnxruntime, TFLite interpreter and sshd on 127.0.0.1, and
a sysfs shaped like the board it stands for. Modules: preflight (host checks), mirror (apt
sources), recipe + rootfs (build and cache), board_sysfs and sysfs_tree (the board's /sys in the
kernel's formats), keys (loopback ports, SSH keys), mounts, paths (the lab directory and its
guard), state (state.json), inventory_edit, board (up / down / list).

May import: `edgekit.core`, `edgekit.transport` (the inventory), the standard library.
"""
