"""The plugin module named by the entry point: one hook implementation."""

from mgsr import hookimpl

from .blocks import ResidualBlock


@hookimpl
def mgsr_filter_blocks():
    return [ResidualBlock]
