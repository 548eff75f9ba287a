"""The model: layer kinds and the networks made of them, as immutable values."""
