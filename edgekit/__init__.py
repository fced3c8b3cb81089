"""edgekit: take a trained model to real edge boards and measure whether it fits there."""

__version__ = "0.1.0"
