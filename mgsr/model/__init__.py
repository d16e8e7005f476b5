"""The G-MGBP generator and what describes it, below the assembly that builds it from plugins.

``generator`` (Algorithm 1), ``weights`` (safetensors files, bundled models), ``card`` (a model card and its
perception-distortion curve, with their JSON form), ``detail`` (the detail scale t <-> W, and the W a run uses),
``amplitude`` (the W range mgsr accepts), ``state`` (loading a state dict with errors that name keys),
``checkpoint_file`` (a training checkpoint read safely), ``official`` (importing the authors' release).  Loading a
model by name or path builds it, so it lives in :mod:`mgsr.assembly.loading`.
"""
