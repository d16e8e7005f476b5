"""A recipe or a weights file turned into modules (the layer above the model and the plugins).

:mod:`.build` puts the registry's components into a generator, discriminator and losses as a recipe says;
:mod:`.loading` opens a weights file, a run's checkpoint or a bundled model by name and builds its generator.
"""
