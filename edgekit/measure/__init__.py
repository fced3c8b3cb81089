"""measure: running measurements on boards — one benchmark (`bench`), fleet plans (`fleet`).

May import: `edgekit.core`, `edgekit.transport`, `edgekit.judge`, `edgekit.store`,
`edgekit.compress` (fleet plans compress before they measure). Never cli or testing.
"""
