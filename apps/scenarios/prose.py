"""Markdown written by people (scenario explanations, tutorials, an organisation's own
content), rendered as CommonMark without raw HTML: an author cannot put script on a page."""

from markdown_it import MarkdownIt

MARKDOWN = MarkdownIt("commonmark", {"html": False})
