"""Example third-party mgsr plugin."""
