"""Auto-compression to a device: candidates, measurement on the board, the Pareto front."""
