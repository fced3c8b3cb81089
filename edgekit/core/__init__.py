"""core: what every part shares, and nothing of any part.

Errors and exit codes (`errors`), TOML reading and validation (`config`), device profiles
(`profiles`), artifacts and the artifact writer (`artifacts`, `artifact_writer`), model readers
(`onnx_model`, `tflite_model`), inputs and sample sets (`inputs`), atomic files (`atomic`),
durations, run locks and where edgekit keeps its files (`resources`).

May import: the standard library, numpy, onnx, and `edgekit.__version__`; no other edgekit part.
"""
