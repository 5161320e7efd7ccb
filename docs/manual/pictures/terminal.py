"""A terminal's captured output as an HTML page, for Chromium to shoot: the manual's pictures of
//:demo and of kubectl.

    python3 terminal.py --title '$ tools/bazel run //:demo' < demo.log > demo.html

Bold and the 8 basic colours of ANSI escapes are kept; any other escape is dropped.
"""

import argparse
import html
import re
import sys

ESCAPE = re.compile(r"\x1b\[([0-9;]*)([A-Za-z])")
COLORS = {30: "#5c6370", 31: "#e06c75", 32: "#98c379", 33: "#e5c07b", 34: "#61afef", 35: "#c678dd", 36: "#56b6c2", 37: "#dcdfe4"}

PAGE = """<!doctype html>
<html lang="es"><head><meta charset="utf-8"><title>{title}</title><style>
body {{ margin: 0; background: #1e2127; font: 13px/1.35 'DejaVu Sans Mono', monospace; color: #dcdfe4; }}
.bar {{ background: #2c313a; padding: 6px 12px; color: #abb2bf; font-family: 'DejaVu Sans', sans-serif; }}
.bar b {{ color: #e5c07b; }}
pre {{ margin: 0; padding: 10px 14px; white-space: pre-wrap; word-break: break-all; }}
.caption {{ padding: 4px 12px 8px; color: #7f848e; font-family: 'DejaVu Sans', sans-serif; font-size: 12px; }}
</style></head><body>
<div class="bar"><b>{title}</b></div>
<pre>{body}</pre>
<div class="caption">{caption}</div>
</body></html>
"""


def to_html(text: str) -> str:
    """The text, HTML-escaped, with its ANSI bold and colours as spans."""
    out, open_spans, pos = [], 0, 0
    text = text.replace("\r\n", "\n")
    for m in ESCAPE.finditer(text):
        out.append(html.escape(text[pos:m.start()]))
        pos = m.end()
        if m.group(2) != "m":
            continue  # cursor moves and the like: nothing to draw
        for code in [int(c) for c in m.group(1).split(";") if c] or [0]:
            if code == 0:
                out.append("</span>" * open_spans)
                open_spans = 0
            elif code == 1:
                out.append('<span style="font-weight:bold">')
                open_spans += 1
            elif code in COLORS:
                out.append(f'<span style="color:{COLORS[code]}">')
                open_spans += 1
    out.append(html.escape(text[pos:]))
    out.append("</span>" * open_spans)
    return "".join(out)


def page(text: str, title: str, caption: str = "") -> str:
    return PAGE.format(title=html.escape(title), body=to_html(text), caption=html.escape(caption))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--title", required=True, help="the command, shown in the window's bar")
    p.add_argument("--caption", default="", help="a line under the output")
    args = p.parse_args()
    sys.stdout.write(page(sys.stdin.read(), args.title, args.caption))


if __name__ == "__main__":
    main()
