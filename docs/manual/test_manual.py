"""The manual's references are real: every image and link points at a file of the checkout (or a
heading of the manual), and every command it shows names a real Bazel target or a real file.

Everything is checked in the checkout itself (the manual's real path, through its runfiles
symlink): a target is real when its package's BUILD file declares a rule of that name. The test
is tagged external, so it reruns every time: a link's file or a target can disappear without the
manual changing. (A genquery over the named targets would be exact, but its scope cannot hold
test targets offline: they drag in Bazel's coverage tools, which are downloaded.)
"""

import re
from pathlib import Path

# pytest runs in the runfiles tree of the workspace.
MANUAL = Path("docs/manual/README.md")
TEXT = MANUAL.read_text(encoding="utf-8")
CHECKOUT = MANUAL.resolve().parents[2]

LINK = re.compile(r"(!?)\[[^\]]*\]\(([^)\s]+)\)")
BAZEL = re.compile(r"tools/bazel (?:run|test|build)((?: +(?!--)\S+)+)")
PATH = re.compile(r"^(?:tools|locust|docs|k8s|go|proto|rust|node|vue)/[\w./-]+$")


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def commands() -> list[str]:
    """Lines of code blocks and inline code spans: where the manual shows commands."""
    blocks = re.findall(r"```[a-z]*\n(.*?)```", TEXT, flags=re.S)
    prose = re.sub(r"```[a-z]*\n.*?```", "", TEXT, flags=re.S)
    return [line for b in blocks for line in b.splitlines()] + re.findall(r"`([^`\n]+)`", prose)


def declared(word: str) -> str:
    """"" when the label names a rule its package's BUILD file declares, else what is wrong
    (//a/b means //a/b:b)."""
    package, _, name = word[2:].partition(":")
    name = name or package.rsplit("/", 1)[-1]
    build = [CHECKOUT / package / f for f in ("BUILD.bazel", "BUILD") if (CHECKOUT / package / f).is_file()]
    if not build:
        return f"no package {package or '(root)'}"
    if not re.search(rf'\bname = "{re.escape(name)}"', build[0].read_text(encoding="utf-8")):
        return f"{build[0].relative_to(CHECKOUT)} declares no rule named {name!r}"
    return ""


def test_the_manual_shows_commands_and_pictures():
    assert len(commands()) > 10
    assert len([m for m in LINK.finditer(TEXT) if m.group(1)]) >= 5


def test_every_link_and_image_exists():
    anchors = {slug(h) for h in re.findall(r"^#+ (.*)$", TEXT, flags=re.M)}
    broken = []
    for m in LINK.finditer(TEXT):
        image, target = m.group(1) == "!", m.group(2)
        if re.match(r"[a-z]+:", target):
            broken += [f"{target}: the manual links only to files of the repository"] if image else []
            continue
        path, _, anchor = target.partition("#")
        if not path:
            if anchor not in anchors:
                broken.append(f"{target}: no such heading")
            continue
        file = (MANUAL.resolve().parent / path).resolve()
        if not file.exists() or CHECKOUT not in file.parents:
            broken.append(f"{target}: no such file in the checkout")
        elif image and (not file.is_file() or file.read_bytes()[:8] != b"\x89PNG\r\n\x1a\n"):
            broken.append(f"{target}: not a PNG image")
    assert not broken, "\n".join(broken)


def test_every_bazel_command_names_a_real_target():
    unknown = []
    for line in commands():
        for m in BAZEL.finditer(line):
            for word in m.group(1).split():
                if word == "//...":
                    continue
                problem = declared(word) if word.startswith("//") else "not a target label"
                if problem:
                    unknown.append(f"{line!r}: {word}: {problem}")
    assert not unknown, "\n".join(unknown)


def test_every_script_and_file_a_command_names_exists():
    missing = []
    for line in commands():
        if line.startswith("tools/bazel "):
            line = line.split(" -- ", 1)[1] if " -- " in line else ""
        for word in line.split():
            if PATH.match(word) and not (CHECKOUT / word).exists():
                missing.append(f"{line!r}: {word} does not exist")
    assert not missing, "\n".join(missing)


def test_declared():
    assert declared("//docs/manual:manual_test") == ""
    assert declared("//docs/manual/objects") == ""
    assert "declares no rule named 'nope'" in declared("//docs/manual:nope")
    assert declared("//no/such/package:x") == "no package no/such/package"


def test_slug():
    assert slug("Cómo se regenera este manual") == "cómo-se-regenera-este-manual"
    assert slug("¿Qué ruta es más rápida y por qué?") == "qué-ruta-es-más-rápida-y-por-qué"
