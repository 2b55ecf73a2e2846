"""Contracts shared by every layer: the generic registry, the project's exceptions and the schemas."""
