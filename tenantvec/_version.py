"""The package version, at the bottom layer so that any module may name it (an export
file records the version that wrote it) without importing the facade."""

__version__ = "0.1.0"
