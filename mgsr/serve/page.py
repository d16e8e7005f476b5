"""The fixed text of the ``mgsr serve`` page: its style, intro, legend, the preview's status lines and the small
scripts the browser runs (marking the preview out of date the moment a setting changes).

Why apart from :mod:`mgsr.serve.wiring`: the wiring reads better without a page of strings in front of it.
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
#mgsr-result-status p { margin: 0; padding: 4px 8px; border-radius: 4px; }
#mgsr-result-status [data-state=stale] { background: #fff3cd; color: #664d03; font-weight: 600; }
.gradio-container:has(#mgsr-result-status [data-state=stale]) :is(#mgsr-result img, #mgsr-downloads, #mgsr-command) {
  opacity: 0.45; }
#mgsr-crop-moves button { min-width: 0; }
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
    return (
        f"{name}: the automatic map is shown (strokes already made stay on top); paint over it where W "
        f"should differ, or **No map**."
    )


#: beside detail while the automatic map is on
AUTOMATIC_W = "W comes from the automatic map's calibration (W per level); **No map** gives detail and W back."

# What the line above the preview says; the browser sets it (no round trip), so it is never late.
STALE = (
    '<p data-state="stale">⟳ Out of date: the preview does not show the current settings yet; it is being updated.</p>'
)
CURRENT = '<p data-state="current">✓ The preview shows the current settings.</p>'
FAILED = '<p data-state="failed">⚠ Out of date: the preview failed (see the message at the top right).</p>'
#: a refused upload: no preview is coming (the old one, of another image, stays dimmed)
REFUSED = (
    '<p data-state="failed">⚠ No preview: that file was refused (see the message at the top right); '
    "choose another image.</p>"
)
# The line above the whole-image result: it, its command and its downloads belong to the settings of the
# moment "Upscale the whole image" was pressed, and say so once anything changes.
RESULT_STALE = (
    '<p data-state="stale">⚠ Out of date: the settings changed since this result was made; the result, its '
    "command and its downloads are for the old ones. Press <b>Upscale the whole image</b> again.</p>"
)
RESULT_CURRENT = '<p data-state="current">✓ The result, its command and its downloads are for the current settings.</p>'
#: the next request number: counted in the page, not from the ``wanted`` each handler was given, because
#: one user action can run two handlers that read the same ``wanted`` (W's input and its change): the
#: second must still be a new request, or the preview answering the first would pass for current.  A change
#: on its way (a stroke drawn, not yet sent: ``mgsrPending``) is sent with it.
NEXT = "(window.mgsrPending = false, window.mgsrWanted = Math.max(window.mgsrWanted || 0, Number(n) || 0) + 1)"
#: the result's line once the settings moved on: stale when there is a result (``made`` >= 0), else nothing
_RESULT_MOVED = f"(Number(made) >= 0 ? {json.dumps(RESULT_STALE)} : '')"
#: a settings change: one more request for a preview (``wanted``); the preview and the result marked out of date
MARK_JS = f"(n, made) => [{NEXT}, {json.dumps(STALE)}, {_RESULT_MOVED}]"
#: out of date at once, before the request (a new image, a click on the crop): the request follows
STALE_JS = f"(made) => [{json.dumps(STALE)}, {_RESULT_MOVED}]"
#: a stroke begun on the editor: Gradio sends it about a second after the pen is lifted; until then nothing
#: the page shows is current
PENDING_JS = f"(made) => {{ window.mgsrPending = true; return [{json.dumps(STALE)}, {_RESULT_MOVED}]; }}"
_SETTLED = (
    f"(!view ? '' : !window.mgsrPending && Number(wanted) === Number(shown) ? {json.dumps(CURRENT)} "
    f": {json.dumps(STALE)})"
)
_RESULT_SETTLED = (
    f"(Number(made) < 0 ? '' : !window.mgsrPending && Number(wanted) === Number(made) ? "
    f"{json.dumps(RESULT_CURRENT)} : {json.dumps(RESULT_STALE)})"
)
#: a preview arrived: it is current only if no change came after the request it answers (nor is on its way)
SETTLE_JS = f"(wanted, shown, view) => {_SETTLED}"
#: a whole-image result arrived: current only if nothing changed since the press (``made``: its request number)
RESULT_SETTLE_JS = f"(wanted, made) => {_RESULT_SETTLED}"
#: the pen lifted and no stroke was sent (a click, a pan): the page's lines as the state says
UNPEND_JS = f"(wanted, shown, view, made) => {{ window.mgsrPending = false; return [{_SETTLED}, {_RESULT_SETTLED}]; }}"
#: "Upscale the whole image" pressed: the request number its result will belong to
RUN_JS = "(wanted) => { window.mgsrRunAt = Number(wanted) || 0; }"
#: the result arrived: its number kept (``made``), and its line as the state says
RAN_JS = f"(wanted) => {{ const made = window.mgsrRunAt; return [made, {_RESULT_SETTLED}]; }}"
FAILED_JS = f"() => {json.dumps(FAILED)}"
REFUSED_JS = f"() => {json.dumps(REFUSED)}"
#: after "No map": the strokes stay, and the line says so (they used to vanish without a word)
PLAIN_NOTE = (
    "No map: the picture alone; your strokes stay and still set W where they are (the eraser or the "
    "editor's bin removes them). "
)
#: the keyboard's way to move the preview crop: the buttons under the crop chooser, and the arrow keys on it
CROP_MOVES = (("left", "←", -1, 0), ("up", "↑", 0, -1), ("down", "↓", 0, 1), ("right", "→", 1, 0))
#: what Gradio leaves unnamed or unreachable: the crop chooser's button (and the arrow keys on it), the crop's
#: move buttons, the preview's and result's images, the command box (focusable, read-only), the upload areas
#: (each its own name), the two status lines (announced); and the pen on the editor marking the page out of
#: date at once (Gradio sends a stroke about a second after it ends)
HEAD = (
    """<script>
(() => {
  const put = (el, key, value) => { if (el && el.getAttribute(key) !== value) el.setAttribute(key, value); };
  const moves = """
    + json.dumps([[key, key] for key, _, _, _ in CROP_MOVES])
    + """;
  const uploads = [['#mgsr-image', 'the image to upscale'], ['#mgsr-mask', 'a mask image'],
    ['#mgsr-calibration', 'a calibration file']];
  const name = () => {
    put(document.querySelector('#mgsr-crop button:has(img)'), 'aria-label',
      'Move the preview: click the point of the image to preview, or use the arrow keys');
    document.querySelectorAll('#mgsr-crop img').forEach(i => put(i, 'alt', 'The input with the preview crop outlined'));
    moves.forEach(([key, word]) => put(document.querySelector('#mgsr-crop-' + key), 'aria-label',
      'Move the preview crop ' + word));
    const made = (document.querySelector('#mgsr-preview-caption') || {}).innerText || '';
    document.querySelectorAll('#mgsr-preview img').forEach((i, k) => put(i, 'alt',
      (k === 0 ? 'Preview crop, bicubic upscale' : 'Preview crop, mgsr upscale') + (made ? ': ' + made : '')));
    document.querySelectorAll('#mgsr-result img').forEach((i, k) => put(i, 'alt',
      k === 0 ? 'Whole image, bicubic upscale' : 'Whole image, mgsr upscale'));
    const command = document.querySelector('#mgsr-command textarea');
    if (command) {
      put(command, 'aria-label', 'The same with mgsr upscale: the command line');
      if (!command.readOnly) command.readOnly = true;
    }
    uploads.forEach(([sel, what]) => document.querySelectorAll(sel + ' button').forEach(b => {
      if (/upload/i.test(b.innerText + ' ' + (b.getAttribute('aria-label') || ''))) put(b, 'aria-label',
        'Upload ' + what + ': click, or drop a file here');
    }));
    ['#mgsr-preview-status', '#mgsr-result-status'].forEach(sel => {
      const line = document.querySelector(sel);
      put(line, 'role', 'status');
      put(line, 'aria-live', 'polite');
    });
  };
  new MutationObserver(name).observe(document.documentElement,
    {subtree: true, childList: true, characterData: true, attributes: true, attributeFilter: ['src']});
  const keys = {ArrowLeft: 'left', ArrowUp: 'up', ArrowDown: 'down', ArrowRight: 'right'};
  document.addEventListener('keydown', (e) => {
    if (!keys[e.key] || !e.target.closest || !e.target.closest('#mgsr-crop')) return;
    e.preventDefault();
    document.querySelector('#mgsr-crop-' + keys[e.key])?.click();
  });
  let lifted = 0;
  document.addEventListener('pointerdown', (e) => {
    const pen = e.target.closest && e.target.closest('#mgsr-editor canvas');
    if (pen) document.querySelector('#mgsr-stroke-start')?.click();
  }, true);
  document.addEventListener('pointerup', () => {
    if (!window.mgsrPending) return;
    const mine = ++lifted;  // no stroke sent within 10 s of the pen lifting: it drew nothing (a pan, a click)
    setTimeout(() => {
      if (window.mgsrPending && mine === lifted) document.querySelector('#mgsr-stroke-none')?.click();
    }, 10000);
  }, true);
})();
</script>"""
)
