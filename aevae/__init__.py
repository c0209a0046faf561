"""aevae: an experiment-tracking benchmark suite for autoencoders."""

__version__ = "0.1.0"
