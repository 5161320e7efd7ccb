"""The manual's references are real: every image and link points at a file of the checkout (or a
heading of the manual), and every command it shows names a real Bazel target or a real file. Every
picture says where it was made: the line under it is a "Dónde se hizo" caption naming one of the
places the manual's pictures can come from. The manual is README.md and its chapters (every .md
of docs/manual).

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
CHECKOUT = MANUAL.resolve().parents[2]
# The manual and its chapters, as they are in the checkout (a chapter may be new to the runfiles).
PAGES = sorted((CHECKOUT / "docs" / "manual").glob("*.md"))
TEXTS = {page.name: page.read_text(encoding="utf-8") for page in PAGES}

# Where a picture of the manual can have been made, as its caption names it.
PLACES = ("la pila local", "el plano de control de prueba", "el nodo de prueba real", "Google Cloud")
CAPTION = re.compile(r"\*Dónde se hizo: (.+)\*")

LINK = re.compile(r"(!?)\[[^\]]*\]\(([^)\s]+)\)")
BAZEL = re.compile(r"tools/bazel (?:run|test|build)((?: +(?!--)\S+)+)")
PATH = re.compile(r"^(?:tools|locust|docs|k8s|go|proto|rust|node|vue)/[\w./-]+$")


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    return {slug(h) for h in re.findall(r"^#+ (.*)$", text, flags=re.M)}


def commands() -> list[str]:
    """Lines of code blocks and inline code spans of every page: where the manual shows commands."""
    out = []
    for text in TEXTS.values():
        blocks = re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S)
        prose = re.sub(r"```[a-z]*\n.*?```", "", text, flags=re.S)
        out += [line for b in blocks for line in b.splitlines()] + re.findall(r"`([^`\n]+)`", prose)
    return out


def uncaptioned(text: str) -> list[str]:
    """The images of a page whose next non-empty line is not a "Dónde se hizo" caption naming a
    place of PLACES, each with what is wrong."""
    lines = text.splitlines()
    problems = []
    for i, line in enumerate(lines):
        image = re.match(r"\s*!\[[^\]]*\]\(([^)\s]+)\)\s*$", line)
        if not image:
            continue
        after = next((next_line.strip() for next_line in lines[i + 1:] if next_line.strip()), "")
        caption = CAPTION.fullmatch(after)
        if not caption:
            problems.append(f"{image.group(1)}: the line under it is not '*Dónde se hizo: ...*' but {after!r}")
        elif not any(caption.group(1).startswith(place) for place in PLACES):
            problems.append(f"{image.group(1)}: its caption names no place of {PLACES}: {after!r}")
    return problems


def declared(word: str) -> str:
    """"" when the label names a rule its package's BUILD file declares, else what is wrong
    (//a/b means //a/b:b)."""
    package, _, name = word[2:].partition(":")
    name = name or package.rsplit("/", 1)[-1]
    build = [CHECKOUT / package / f for f in ("BUILD.bazel", "BUILD") if (CHECKOUT / package / f).is_file()]
    if not build:
        return f"no package {package or '(root)'}"
    text = build[0].read_text(encoding="utf-8")
    if re.search(rf'\bname = "{re.escape(name)}"', text):
        return ""
    # Rules made in a list comprehension: name = mode ... for mode in ["apply", "diff", ...].
    for var in set(re.findall(r"\bname = ([A-Za-z_]\w*)\b", text)):
        for names in re.findall(rf"\bfor {var} in \[([^\]]*)\]", text):
            if f'"{name}"' in names:
                return ""
    return f"{build[0].relative_to(CHECKOUT)} declares no rule named {name!r}"


def test_the_manual_shows_commands_and_pictures():
    assert {"README.md", "despliegue-gke.md"} <= set(TEXTS)
    assert len(commands()) > 10
    assert len([m for m in LINK.finditer(TEXTS["README.md"]) if m.group(1)]) >= 5


def test_every_link_and_image_exists():
    broken = []
    for name, text in TEXTS.items():
        for m in LINK.finditer(text):
            image, target = m.group(1) == "!", m.group(2)
            if re.match(r"[a-z]+:", target):
                broken += [f"{name}: {target}: the manual links only to files of the repository"] if image else []
                continue
            path, _, anchor = target.partition("#")
            if not path:
                if anchor not in anchors(text):
                    broken.append(f"{name}: {target}: no such heading")
                continue
            file = (MANUAL.resolve().parent / path).resolve()
            if not file.exists() or CHECKOUT not in file.parents:
                broken.append(f"{name}: {target}: no such file in the checkout")
            elif image and (not file.is_file() or file.read_bytes()[:8] != b"\x89PNG\r\n\x1a\n"):
                broken.append(f"{name}: {target}: not a PNG image")
            elif anchor and file.suffix == ".md" and anchor not in anchors(file.read_text(encoding="utf-8")):
                broken.append(f"{name}: {target}: {path} has no such heading")
    assert not broken, "\n".join(broken)


def test_every_picture_says_where_it_was_made():
    problems = [f"{name}: {p}" for name, text in TEXTS.items() for p in uncaptioned(text)]
    assert not problems, "\n".join(problems)


def test_uncaptioned():
    good = "![a](img/a.png)\n\n*Dónde se hizo: la pila local, el 2026-12-06.*\n"
    assert uncaptioned(good) == []
    assert uncaptioned("![a](img/a.png)\n\n*Dónde se hizo: el nodo de prueba real.*") == []
    assert "is not '*Dónde se hizo" in uncaptioned("![a](img/a.png)\n\nUn párrafo cualquiera.\n")[0]
    assert "is not '*Dónde se hizo" in uncaptioned("texto\n![a](img/a.png)")[0]
    assert "names no place" in uncaptioned("![a](img/a.png)\n*Dónde se hizo: mi portátil.*")[0]
    # A caption above the picture does not count: it must be under it.
    assert uncaptioned("*Dónde se hizo: la pila local.*\n![a](img/a.png)\n") != []


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
    # k8s/BUILD.bazel makes apply, diff and delete in one comprehension.
    assert declared("//k8s:apply") == "" and declared("//k8s:delete") == ""
    assert "declares no rule named 'undo'" in declared("//k8s:undo")


def test_slug():
    assert slug("Cómo se regenera este manual") == "cómo-se-regenera-este-manual"
    assert slug("¿Qué ruta es más rápida y por qué?") == "qué-ruta-es-más-rápida-y-por-qué"
