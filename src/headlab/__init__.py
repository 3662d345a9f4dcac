"""headlab: measure what the output head of a classifier changes."""

__version__ = "0.1.0"
