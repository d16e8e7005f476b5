"""``mgsr serve``: a local web page around the perception-distortion knob.

:mod:`.uploads` checks and decodes what a browser sends, :mod:`.handling` does one
request's work with the same code as ``mgsr upscale``; both work without Gradio.
:mod:`.app` is the page itself and needs the ``web`` extra (``pip install "mgsr[web]"``).
"""
