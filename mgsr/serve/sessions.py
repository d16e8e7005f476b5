"""What ``mgsr serve`` keeps of each open page (one user's session): the newest preview that page asked for.

Apart from :mod:`.server`, which holds what every page shares (the models, the limits, the work folder, the
calibration files, the caches): this is the only state on the server that belongs to one page.  Everything
else a page has set (its image, knobs, crop, the automatic map's key) the browser sends with each request.
"""

from __future__ import annotations

import collections

#: pages whose newest preview request is remembered; the longest idle is forgotten first
KEEP_PAGES = 256


class Sessions:
    """The newest preview request of each page, by Gradio's session hash; at most :data:`KEEP_PAGES` pages."""

    def __init__(self) -> None:
        self._newest: collections.OrderedDict[str, int] = collections.OrderedDict()

    def asked(self, page: str, number: int) -> None:
        """The page ``page`` asked for preview ``number`` (its requests are counted up in the browser)."""
        self._newest[page] = max(number, self._newest.get(page, number))
        self._newest.move_to_end(page)
        while len(self._newest) > KEEP_PAGES:
            self._newest.popitem(last=False)

    def outdated(self, page: str, number: int) -> bool:
        """Whether the page has asked for a newer preview than ``number`` since.

        A page asks for one at every change (a drag is a dozen), and the requests reach the queue
        in any order (each first uploads its painting); one answered after a newer one would show
        old settings for good.  So an outdated request is skipped: only the newest is made and shown.
        """
        return number < self._newest.get(page, number)
