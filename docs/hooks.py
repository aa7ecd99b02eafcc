"""MkDocs hook: fill each ``<!-- generated: NAME -->`` marker from the code.

The reference pages (configuration, command line, tables, errors) are
rendered by :mod:`credit_batch.reference` at build time.
"""

from __future__ import annotations

import re

from credit_batch.reference import render

_MARKER = re.compile(r"<!-- generated: (\w+) -->")


def on_page_markdown(markdown: str, **kwargs) -> str:
    return _MARKER.sub(lambda m: render(m.group(1)), markdown)
