"""One exception hierarchy for everything a user can get wrong.

The CLI maps each class to an exit code, so scripts can tell a bad recipe from a
bad image.  None of these subclasses ``KeyError``: cattrs renders a ``KeyError``
raised inside a structure hook as "required field missing", which would hide the
real message.
"""

from __future__ import annotations


class MgsrError(Exception):
    """Base of all errors that are the user's to fix; the CLI prints them in one line."""

    exit_code = 1


class PluginError(MgsrError):
    """A plugin is broken: it fails to import, implements an unknown hook, or returns bad components."""

    exit_code = 3


class UnknownComponentError(MgsrError):
    """A recipe or a call names a component that no plugin provides."""

    exit_code = 2


class DuplicateComponentError(MgsrError):
    """Two plugins provide a component of the same kind under the same name."""

    exit_code = 3


class RecipeError(MgsrError):
    """A recipe file does not parse or does not match the schema."""

    exit_code = 2


class WeightsError(MgsrError):
    """A weights file or checkpoint is unreadable or does not fit the architecture."""

    exit_code = 4


class DownloadError(WeightsError):
    """A file fetched on first use (e.g. VGG-19's weights) is missing and cannot be downloaded."""

    exit_code = 4


class ImageError(MgsrError):
    """An input image cannot be read or an output image cannot be written."""

    exit_code = 5


class EvaluationError(MgsrError):
    """Outputs cannot be scored as asked: missing or mismatched images, a budget no noise level meets, ..."""

    exit_code = 6
