"""The generator as a model: export to other runtimes (more modules move here with the layout change)."""
