"""cli: the `edgekit` command — thin skins over the library, one module per command group
(`bench`, `compress`, `compare` + `check`, `fleet`, `report`, `optimize`, `train`, `lab`, and
`info` for devices / profiles / history), console output (`output`, `fleet_progress`) and the
one place where typed errors become exit codes (`main`). A command parses options, resolves the
board once, calls the library and prints; it holds no measuring, judging or storing logic.

May import any edgekit part except `edgekit.testing`. No library module imports it.
"""
