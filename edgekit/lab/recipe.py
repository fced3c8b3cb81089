"""What goes into an emulated board's root filesystem, and the cache key that names the result (pure).

Debian packages come from the machine's own Debian mirror (debootstrap); the runtimes are
aarch64 wheels from the package index, installed from the host with `pip install --target`
because Debian has no onnxruntime. Versions are pinned so that the key names one rootfs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

# Raised whenever the build steps change in a way the lists below do not show.
RECIPE_VERSION = 1


@dataclass(frozen=True)
class RootfsRecipe:
    suite: str = "bookworm"
    arch: str = "arm64"
    python_version: str = "3.11"  # bookworm's python3; the wheels must match it
    debs: tuple[str, ...] = ("python3", "python3-numpy", "openssh-server")
    # onnxruntime and its import-time dependencies; ai-edge-litert 1.4.0 is the newest release
    # with a cp311 manylinux aarch64 wheel (2.x has none), with the modules its interpreter imports.
    wheels: tuple[str, ...] = (
        "onnxruntime==1.32.0",
        "flatbuffers==25.12.19",
        "packaging==26.2",
        "protobuf==7.36.2",
        "ai-edge-litert==1.4.0",
        "backports.strenum==1.2.8",
        "typing-extensions==4.15.0",
        "tqdm==4.70.1",
    )
    # Wheel tags an aarch64 bookworm (glibc 2.36) accepts, newest first.
    platforms: tuple[str, ...] = field(
        default=(
            "manylinux_2_36_aarch64",
            "manylinux_2_34_aarch64",
            "manylinux_2_31_aarch64",
            "manylinux_2_28_aarch64",
            "manylinux_2_17_aarch64",
            "manylinux2014_aarch64",
            "linux_aarch64",
        )
    )

    def key(self) -> str:
        """12 hex digits of sha256 over the whole recipe: a changed list is a new rootfs."""
        data = json.dumps({"version": RECIPE_VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(data.encode()).hexdigest()[:12]

    @property
    def site_packages(self) -> str:
        """Where Debian's python3 looks for locally installed packages (relative to the root)."""
        return f"usr/local/lib/python{self.python_version}/dist-packages"
