"""Thin blueprints: each view parses, calls the protocol or storage layer, and renders."""
