"""``mgsr serve``: a local web page around the perception-distortion knob.

Each module holds one responsibility, and none of the first group needs Gradio:

- what a request may be: :mod:`.limits` caps one HTTP request before Gradio reads it, :mod:`.uploads`
  checks and decodes the files a browser sends, :mod:`.settings` turns the page's knobs into one checked
  request;
- what a request works with: :mod:`.catalog` the models offered, :mod:`.maps` the W maps (painted,
  uploaded, automatic) and calibration files, :mod:`.crop` where the preview crop is;
- the upscaling jobs: :mod:`.jobs` makes the preview and the whole image with the same code as
  ``mgsr upscale``, with the command line that gives the same bytes;
- the state: :mod:`.server` holds what every request shares and does what each handler asks,
  :mod:`.sessions` what is kept of each open page; :mod:`.failures` is what a failed request tells the page.

The page itself needs the ``web`` extra (``pip install "mgsr[web]"``): :mod:`.layout` places its components,
:mod:`.page` holds its text and small scripts, :mod:`.wiring` connects each change to the server, and
:mod:`.app` serves it on HTTP.
"""
