"""optimize: auto-compression for a board — candidates (`candidates`: a recipe chain or a
trained artifact, plus runtime settings), the search that compresses, judges accuracy on the
host and measures on the board (`search`), its resumable state (`state`), held-out data
(`data`), and the Pareto front and the pick (`pareto`).

May import: `edgekit.core`, `edgekit.compress`, `edgekit.train` (training candidates),
`edgekit.measure`, `edgekit.judge`, `edgekit.store`, `edgekit.transport`. Its page is drawn by
`edgekit.report.optimize_page` (report sits above optimize).
"""
