"""Mappings: one system's record turned into the other's. Pure functions, no I/O."""
