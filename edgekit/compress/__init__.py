"""Compression recipes (quantization, pruning, low-rank) judged by fidelity on real data."""

from edgekit.compress.pipeline import CompressOptions, compress
from edgekit.compress.recipes import RECIPES, parse_recipes

__all__ = ["RECIPES", "CompressOptions", "compress", "parse_recipes"]
