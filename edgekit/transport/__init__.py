"""Ways to reach a device: `local` (a subprocess here) now, `ssh` later."""
