"""convcalc: shapes, parameters, multiply-accumulates and receptive fields of
convolutional networks, exactly and without a deep learning framework."""

__all__ = ["__version__"]

__version__ = "0.1.0"
