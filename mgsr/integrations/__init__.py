"""mgsr inside other programs (applications layer): :mod:`.spandrel` registers G-MGBP with spandrel's
loader (ComfyUI, chaiNNer), :mod:`.comfyui` is the ComfyUI node pack.
"""
