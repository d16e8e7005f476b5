"""The G-MGBP generator and its weights: ``generator`` (Algorithm 1), ``weights`` (safetensors files, bundled
models, model cards), ``official`` (importing the authors' release), ``loading`` (a weights file -> a
:class:`~mgsr.model.loading.LoadedModel`, with an explicit cache)."""
