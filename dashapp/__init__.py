"""Persona Engine: customer segmentation from upload to personas (the Dash-free core)."""

__version__ = "0.1.0"
