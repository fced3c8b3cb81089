"""train: training-aware compression (the `train` extra: CPU PyTorch + scikit-learn).

Modules, one technique each: `qat` (quantization-aware training -> QDQ int8 ONNX), `prune`
(iterative structured channel pruning with fine-tuning), `distill` (one or many teachers into a
student). Shared parts: `data` (.npz / image folders as tensors), `loop` (seeded training loop
with per-epoch checkpoints, resume and NaN detection), `export` (torch -> ONNX), `artifact`
(artifact directory + manifest, published like `edgekit compress` does).

Nothing here is imported by `import edgekit`; every module that needs torch says so in one line
(`require_torch`) when the extra is missing.

May import: `edgekit.core`, `edgekit.compress` (the quantizer QAT exports through), torch.
"""
