"""Analysis → text: one module per output form, all reading the same `Analysis`."""
