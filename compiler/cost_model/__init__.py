"""The learned cost model: per-store features of the lowered program, and models
that score schedule states (higher = predicted faster)."""
