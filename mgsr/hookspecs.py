"""The plugin contract: one collecting hook per component kind, and the marker plugins use.

Each hook returns the component classes a plugin provides.  None is
``firstresult``: every plugin's answer is collected and merged by the registry.
Specs may gain arguments later; pluggy lets an implementation accept fewer.
:mod:`mgsr.kinds` ties each hook to its interface and recipe spec class.
"""

from __future__ import annotations

from collections.abc import Sequence

import pluggy

PROJECT_NAME = "mgsr"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)


#: Marks a function as an mgsr hook implementation: ``from mgsr import hookimpl``.  Example::
#:
#:     @hookimpl
#:     def mgsr_filter_blocks():
#:         return [MyBlock]
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def mgsr_filter_blocks() -> Sequence[type]:
    """Return the FilterBlock classes this plugin provides.

    A filter block maps ``(N, c, H, W)`` to ``(N, c, H, W)`` and is built as
    ``Cls(config, channels=c)``; the generator's Analysis, Upscaling,
    Downscaling and Synthesis modules are built around one each.

    :return: a sequence of :class:`mgsr.interfaces.FilterBlock` subclasses.

    .. versionadded:: 0.1
    """


@hookspec
def mgsr_classic_upscalers() -> Sequence[type]:
    """Return the ClassicUpscaler classes this plugin provides.

    A classic upscaler doubles the resolution of an image (the base that the
    network refines at every level), built as ``Cls(config, channels=c)``.

    :return: a sequence of :class:`mgsr.interfaces.ClassicUpscaler` subclasses.

    .. versionadded:: 0.1
    """


@hookspec
def mgsr_discriminators() -> Sequence[type]:
    """Return the Discriminator classes this plugin provides.

    :return: a sequence of :class:`mgsr.interfaces.Discriminator` subclasses.

    .. versionadded:: 0.1
    """


@hookspec
def mgsr_losses() -> Sequence[type]:
    """Return the Loss classes this plugin provides.

    :return: a sequence of :class:`mgsr.interfaces.Loss` subclasses.

    .. versionadded:: 0.1
    """


@hookspec
def mgsr_noise_sources() -> Sequence[type]:
    """Return the NoiseSource classes this plugin provides.

    A noise source draws the standard-normal-like maps that the generator
    scales by the noise amplitude W at every level.

    :return: a sequence of :class:`mgsr.interfaces.NoiseSource` subclasses.

    .. versionadded:: 0.1
    """


@hookspec
def mgsr_discriminator_inputs() -> Sequence[type]:
    """Return the DiscriminatorInput classes this plugin provides.

    A discriminator input turns ``(N, c, H, W)`` images into the
    ``out_channels`` features the discriminator analyses (the paper's VN+SC
    layer, or plain colour), built as ``Cls(config, channels=c)``.

    :return: a sequence of :class:`mgsr.interfaces.DiscriminatorInput` subclasses.

    .. versionadded:: 0.1
    """


@hookspec
def mgsr_feature_extractors() -> Sequence[type]:
    """Return the FeatureExtractor classes this plugin provides.

    A feature extractor is a fixed network (e.g. VGG-19 up to conv3_4) whose
    features perceptual losses compare, built as ``Cls(config)``.

    :return: a sequence of :class:`mgsr.interfaces.FeatureExtractor` subclasses.

    .. versionadded:: 0.1
    """


@hookspec
def mgsr_metrics() -> Sequence[type]:
    """Return the Metric classes this plugin provides.

    A metric scores one quantised output image (with its reference image when
    it is a full-reference metric) and says how a set of per-image scores
    combines into the score of the set.  A plugin providing a metric named
    ``ma`` makes the evaluator report PIRM-SR's perceptual index.

    :return: a sequence of :class:`mgsr.interfaces.Metric` subclasses.

    .. versionadded:: 0.1
    """
