"""``mgsr serve``: a local web page around the perception-distortion knob.

:mod:`.limits` caps what one HTTP request may carry before Gradio reads it, :mod:`.uploads` checks and
decodes what a browser sends, :mod:`.settings` turns the knobs into one
checked request, :mod:`.maps` makes W maps (painted, uploaded, automatic) and reads calibration files,
:mod:`.handling` does one request's work with the same code as ``mgsr upscale``, :mod:`.server` holds
what requests share and does what each handler asks; none of them needs Gradio.  :mod:`.layout` and
:mod:`.app` are the page itself (components placed, then wired) and need the ``web`` extra
(``pip install "mgsr[web]"``); :mod:`.page` holds its text and small scripts.
"""
