"""One exception hierarchy for everything a user can get wrong, and the one table of exit codes.

The CLI maps each class to its exit code, so scripts can tell a bad recipe from a bad image.  None of these
subclasses ``KeyError``: cattrs renders a ``KeyError`` raised inside a structure hook as "required field
missing", which would hide the real message.

=====  ==============================================================================
code   meaning
=====  ==============================================================================
1      :class:`MgsrError` — any other problem the user can fix (a bad option value)
2      :class:`RecipeError`, :class:`UnknownComponentError` — a recipe or component name is wrong
3      :class:`PluginError`, :class:`DuplicateComponentError` — an installed plugin is broken or clashes
4      :class:`WeightsError` (and :class:`DownloadError`) — weights or a checkpoint unusable or unobtainable
5      :class:`ImageError` — an input image unreadable or an output image unwritable
6      :class:`EvaluationError` — outputs cannot be scored as asked
7      :class:`TrainingError` — training cannot go on
8      :class:`DataError` — the training or validation data cannot be used as given
130    :class:`Interrupted` — stopped by Ctrl-C or SIGTERM (after saving what could be saved)
=====  ==============================================================================
"""

from __future__ import annotations


class MgsrError(Exception):
    """Base of all errors that are the user's to fix; the CLI prints them in one line."""

    exit_code = 1


class RecipeError(MgsrError):
    """A recipe file does not parse or does not match the schema."""

    exit_code = 2


class UnknownComponentError(MgsrError):
    """A recipe or a call names a component that no plugin provides."""

    exit_code = 2


class PluginError(MgsrError):
    """A plugin is broken: it fails to import, implements an unknown hook, or returns bad components."""

    exit_code = 3


class DuplicateComponentError(MgsrError):
    """Two plugins provide a component of the same kind under the same name."""

    exit_code = 3


class WeightsError(MgsrError):
    """A weights file or checkpoint is unreadable or does not fit the architecture."""

    exit_code = 4


class DownloadError(WeightsError):
    """A file fetched on first use (e.g. VGG-19's weights) is missing and cannot be downloaded.

    ``url`` and ``target``: what was to be fetched, and where to (None when unknown), so that a caller can
    say more without reading the message (``mgsr train --dry-run`` probes the URL).
    """

    exit_code = 4

    def __init__(self, message: str, *, url: str | None = None, target: str | None = None) -> None:
        super().__init__(message)
        self.url, self.target = url, target


class ImageError(MgsrError):
    """An input image cannot be read or an output image cannot be written."""

    exit_code = 5


class EvaluationError(MgsrError):
    """Outputs cannot be scored as asked: missing or mismatched images, a budget no noise level meets, ..."""

    exit_code = 6


class TrainingError(MgsrError):
    """Training cannot go on (a non-finite loss, a run folder in the way, a checkpoint that does not fit)."""

    exit_code = 7


class DataError(MgsrError):
    """The training or validation data cannot be used as given."""

    exit_code = 8


class Interrupted(MgsrError):
    """Stopped by Ctrl-C or SIGTERM after saving a checkpoint."""

    exit_code = 130
