"""judge: pure decisions on measured numbers — latency statistics (`stats`), budgets (`budgets`),
the regression gate (`regression`), comparing results (`compare`), run fingerprints
(`fingerprint`), thermal state (`thermal`) and the rules of `devices doctor` (`doctor`).

Results and facts in, verdicts out: no I/O, no device, no store.
May import: `edgekit.core`, the standard library, numpy, scipy. Never transport or store
(import-linter contract in pyproject.toml).
"""
