"""Importers: foreign graphs (ONNX, PyTorch) → convcalc model documents.

An importer translates a graph into the plain data a model file gives (`{"name", "input",
"layers"}`), which then goes through the ordinary loader: the same checks, analysis and
output as a hand-written model file. `graph.to_layers` turns a graph of nodes into the
nested blocks of a model file.
"""

__all__: list[str] = []
