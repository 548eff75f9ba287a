"""Model → analysis: shapes, parameters, multiply-accumulates and receptive fields."""
