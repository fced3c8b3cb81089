"""compress: compression recipes (quantization, pruning, low-rank, TFLite int8) judged by
fidelity on real data, and the pipeline that writes an artifact directory.

May import: `edgekit.core`, onnx, onnxruntime, numpy. Never transport, store, train or cli.
"""

from edgekit.compress.pipeline import CompressOptions, compress
from edgekit.compress.recipes import RECIPES, Recipe, RecipeStep, parse_recipe, parse_recipes, step

__all__ = [
    "RECIPES",
    "CompressOptions",
    "Recipe",
    "RecipeStep",
    "compress",
    "parse_recipe",
    "parse_recipes",
    "step",
]
