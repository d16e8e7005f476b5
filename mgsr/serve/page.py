"""The fixed text of the ``mgsr serve`` page: its style, intro, legend, the preview's status lines and the small
scripts the browser runs (marking the preview out of date the moment a setting changes).

Why apart from :mod:`mgsr.serve.app`: the wiring reads better without a page of strings in front of it.
"""

from __future__ import annotations

import json

CSS = """
#mgsr-command textarea { font-family: ui-monospace, monospace; }
footer { display: none !important; }
#mgsr-legend p { margin: 0; }
#mgsr-preview-status p { margin: 0; padding: 4px 8px; border-radius: 4px; }
#mgsr-preview-status [data-state=stale], #mgsr-preview-status [data-state=failed] {
  background: #fff3cd; color: #664d03; font-weight: 600; }
.gradio-container:has(#mgsr-preview-status [data-state=stale]) #mgsr-preview img,
.gradio-container:has(#mgsr-preview-status [data-state=failed]) #mgsr-preview img { opacity: 0.45; }
"""

INTRO = """## mgsr — the perception–distortion knob
**Detail 0** (W = 0): the sharpest faithful upscale (lowest distortion).  **Detail 1**: the model's most realistic
detail (its recorded W).  Paint regions on the image to change W there, click the small image to move the preview."""

LEGEND = (
    "**Paint:** black = 0 (no added detail), grey = half of W, white = W; unpainted = W, or the automatic map "
    "where it is shown. Each stroke counts at once, for the preview and the whole image."
)

NO_CALIBRATION = (
    "No automatic map loaded: load a calibration from `mgsr calibrate --adaptive` under Advanced, "
    "or start `mgsr serve --noise calib.json`."
)


def automatic_on(name: str) -> str:
    """The line above the editor while the automatic map of calibration file ``name`` is on."""
    return f"{name}: the automatic map is shown; paint over it where W should differ, or **No map**."


#: beside detail while the automatic map is on
AUTOMATIC_W = "W comes from the automatic map's calibration (W per level); **No map** gives detail and W back."

# What the line above the preview says; the browser sets it (no round trip), so it is never late.
STALE = (
    '<p data-state="stale">⟳ Out of date: the preview does not show the current settings yet; it is being updated.</p>'
)
CURRENT = '<p data-state="current">✓ The preview shows the current settings.</p>'
FAILED = '<p data-state="failed">⚠ Out of date: the preview failed (see the message at the top right).</p>'
#: the next request number: counted in the page, not from the ``wanted`` each handler was given, because
#: one user action can run two handlers that read the same ``wanted`` (W's input and its change): the
#: second must still be a new request, or the preview answering the first would pass for current
NEXT = "(window.mgsrWanted = Math.max(window.mgsrWanted || 0, Number(n) || 0) + 1)"
#: a settings change: one more request for a preview (``wanted``), and the preview marked out of date
MARK_JS = f"(n) => [{NEXT}, {json.dumps(STALE)}]"
#: a preview arrived: it is current only if no change came after the request it answers
SETTLE_JS = (
    f"(wanted, shown, view) => !view ? '' : Number(wanted) === Number(shown) ? {json.dumps(CURRENT)} "
    f": {json.dumps(STALE)}"
)
FAILED_JS = f"() => {json.dumps(FAILED)}"
#: names for what Gradio leaves unnamed: the crop chooser's button and the preview's and result's images
HEAD = """<script>
(() => {
  const put = (el, key, value) => { if (el.getAttribute(key) !== value) el.setAttribute(key, value); };
  const name = () => {
    const crop = document.querySelector('#mgsr-crop');
    if (crop) {
      crop.querySelectorAll('button').forEach(b => put(b, 'aria-label',
        'Move the preview: click the point of the image to preview'));
      crop.querySelectorAll('img').forEach(i => put(i, 'alt', 'The input with the preview crop outlined'));
    }
    const made = (document.querySelector('#mgsr-preview-caption') || {}).innerText || '';
    document.querySelectorAll('#mgsr-preview img').forEach((i, k) => put(i, 'alt',
      (k === 0 ? 'Preview crop, bicubic upscale' : 'Preview crop, mgsr upscale') + (made ? ': ' + made : '')));
    document.querySelectorAll('#mgsr-result img').forEach((i, k) => put(i, 'alt',
      k === 0 ? 'Whole image, bicubic upscale' : 'Whole image, mgsr upscale'));
  };
  new MutationObserver(name).observe(document.documentElement,
    {subtree: true, childList: true, characterData: true, attributes: true, attributeFilter: ['src']});
})();
</script>"""
