"""What Tally's Strimzi build needs to know about Strimzi's source tree, without yq or Git.

    python3 strimzi_source.py digest DIR              # the tree's content digest (the pin)
    python3 strimzi_source.py override POM OVERRIDES  # rewrite the versions Maven Central forces
    python3 strimzi_source.py kafka-versions YAML     # "<version> <maven version>" per supported Kafka
    python3 strimzi_source.py only-kafka VERSION YAML # make VERSION the only supported Kafka
    python3 strimzi_source.py drop SRC DROPPED        # remove test dependencies Maven Central lacks

digest: the source is pinned by what it holds, not by the bytes of one archive of it: the public
repository's release archive and the machine's shared copy are the same tree compressed
differently (shared/strimzi-src/README.md). The digest is the sha256 of a listing with one line
per file, sorted by path: "f <x or -> <sha256> <path>" for a file, "l <target> <path>" for a
symbolic link. Directories count only through what they hold.

override: Strimzi's root pom names versions Maven Central does not serve (overrides.txt says which
and why). Each override rewrites the <version> of exactly one managed dependency, and only while
it still resolves to the version the override was written for; otherwise the build stops, so a
new Strimzi release makes someone look at each override again.

kafka-versions: Strimzi's build reads kafka-versions.yaml with yq (not in Debian) to generate one
config model per supported Kafka version. The file is a flat YAML list of maps, which this reads
line by line.

drop: a test-only dependency that Maven Central does not serve at any version cannot be
overridden. Maven resolves test dependencies even when tests are skipped, so the dependency is
removed from every pom of the tree (dropped.txt says which and why). The build deletes the test
sources anyway (build.sh): it runs no tests.

only-kafka: the operator refuses to start unless STRIMZI_KAFKA_IMAGES names an image for every
Kafka version its kafka-versions.yaml supports, and it runs whatever image is named for the
version a Kafka resource asks for. Tally builds one Kafka image (4.3.x, the default), so its build
of the operator supports exactly that version: the others are marked unsupported, rather than
naming an image that runs another Kafka than it claims.
"""

import argparse
import hashlib
import os
import re
import sys


def tree_digest(root):
    """The sha256 (hex) of root's listing: files with their mode bit and sha256, links with their target."""
    lines = []
    for dirpath, dirnames, filenames in os.walk(root):
        names = list(filenames)
        # os.walk lists links to directories among the directories and does not follow them.
        for d in list(dirnames):
            if os.path.islink(os.path.join(dirpath, d)):
                dirnames.remove(d)
                names.append(d)
        for name in names:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root).replace(os.sep, "/")
            if os.path.islink(path):
                lines.append((rel, f"l {os.readlink(path)} {rel}\n"))
                continue
            h = hashlib.sha256()
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            mode = "x" if os.stat(path).st_mode & 0o111 else "-"
            lines.append((rel, f"f {mode} {h.hexdigest()} {rel}\n"))
    lines.sort(key=lambda item: item[0].encode())
    return hashlib.sha256("".join(line for _, line in lines).encode()).hexdigest()


def read_overrides(path):
    """overrides.txt: "<groupId>:<artifactId> <upstream version> <our version> <why...>" per line."""
    overrides = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            fields = line.split(None, 3)
            if len(fields) < 4 or ":" not in fields[0]:
                raise ValueError(f"{path}:{number}: want '<groupId>:<artifactId> <upstream> <ours> <why>', got {line!r}")
            group, artifact = fields[0].split(":", 1)
            overrides.append({"group": group, "artifact": artifact, "upstream": fields[1], "ours": fields[2], "why": fields[3]})
    return overrides


_DEPENDENCY = re.compile(r"<dependency>.*?</dependency>", re.S)


def _element(block, name):
    m = re.search(rf"<{name}>\s*([^<]*?)\s*</{name}>", block)
    return m.group(1) if m else None


def apply_overrides(pom, overrides):
    """pom's text with each override applied to its managed dependency; ValueError if one does not fit."""
    props = dict(re.findall(r"<([A-Za-z0-9_.-]+)>([^<${}]*)</\1>", _section(pom, "properties")))
    managed = _section(pom, "dependencyManagement")
    start = pom.index(managed)
    for o in overrides:
        name = f"{o['group']}:{o['artifact']}"
        blocks = [m for m in _DEPENDENCY.finditer(managed)
                  if _element(m.group(0), "groupId") == o["group"] and _element(m.group(0), "artifactId") == o["artifact"]]
        if len(blocks) != 1:
            raise ValueError(f"override {name}: {len(blocks)} managed dependencies match, want exactly 1")
        block = blocks[0].group(0)
        version = _element(block, "version")
        resolved = re.sub(r"\$\{([^}]+)\}", lambda m: props.get(m.group(1), m.group(0)), version or "")
        if resolved != o["upstream"]:
            raise ValueError(f"override {name}: the pom now says {version!r} (= {resolved!r}), not {o['upstream']}: "
                             "check whether the override is still needed")
        new_block = block.replace(f"<version>{version}</version>", f"<version>{o['ours']}</version>", 1)
        managed = managed[:blocks[0].start()] + new_block + managed[blocks[0].end():]
    return pom[:start] + managed + pom[start + len(_section(pom, "dependencyManagement")):]


def _section(pom, name):
    m = re.search(rf"<{name}>.*?</{name}>", pom, re.S)
    if not m:
        raise ValueError(f"the pom has no <{name}>")
    return m.group(0)


def kafka_versions(text):
    """[(version, maven version)] of the entries marked supported: true, in file order."""
    entries, current = [], None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        m = re.match(r"^(- |  )([A-Za-z0-9_-]+):\s*(.*)$", line)
        if not m:
            raise ValueError(f"kafka-versions.yaml:{number}: not a '- key: value' or '  key: value' line: {raw!r}")
        if m.group(1) == "- ":
            current = {}
            entries.append(current)
        elif current is None:
            raise ValueError(f"kafka-versions.yaml:{number}: a key before the first entry")
        current[m.group(2)] = m.group(3).strip().strip("'\"")
    out = []
    for e in entries:
        if e.get("supported") == "true":
            if not e.get("version"):
                raise ValueError(f"kafka-versions.yaml: a supported entry without a version: {e}")
            out.append((e["version"], e.get("maven-version") or e["version"]))
    return out


def only_kafka(text, keep):
    """kafka-versions.yaml's text with every entry but keep's marked supported: false."""
    if keep not in [v for v, _ in kafka_versions(text)]:
        raise ValueError(f"Kafka {keep} is not a supported version in kafka-versions.yaml")
    out, version = [], None
    for raw in text.splitlines(keepends=True):
        m = re.match(r"^(- |  )([A-Za-z0-9_-]+):\s*(.*)$", raw.split("#", 1)[0].rstrip())
        if m and m.group(2) == "version":
            version = m.group(3).strip().strip("'\"")
        if m and m.group(2) == "supported" and version != keep:
            raw = re.sub(r"supported:\s*true", "supported: false", raw)
        out.append(raw)
    return "".join(out)


def read_dropped(path):
    """dropped.txt: "<groupId>:<artifactId> <why...>" per line."""
    dropped = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            fields = line.split(None, 1)
            if len(fields) < 2 or ":" not in fields[0]:
                raise ValueError(f"{path}:{number}: want '<groupId>:<artifactId> <why>', got {line!r}")
            group, artifact = fields[0].split(":", 1)
            dropped.append({"group": group, "artifact": artifact, "why": fields[1]})
    return dropped


def drop(src, dropped):
    """Removes each dropped dependency from every pom under src; returns the changed poms
    (relative to src). ValueError if a dependency is named by no pom."""
    poms = []
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames[:] = sorted(d for d in dirnames if not os.path.islink(os.path.join(dirpath, d)))
        poms += [os.path.join(dirpath, n) for n in sorted(filenames) if n == "pom.xml"]
    changed = []
    for d in dropped:
        found = False
        for pom in poms:
            with open(pom, encoding="utf-8") as f:
                text = f.read()
            kept = _DEPENDENCY.sub(
                lambda m: "" if _element(m.group(0), "groupId") == d["group"] and _element(m.group(0), "artifactId") == d["artifact"] else m.group(0),
                text)
            if kept != text:
                found = True
                with open(pom, "w", encoding="utf-8") as f:
                    f.write(kept)
                changed.append(os.path.relpath(pom, src))
        if not found:
            raise ValueError(f"drop {d['group']}:{d['artifact']}: no pom names it")
    return changed


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("digest").add_argument("dir")
    o = sub.add_parser("override")
    o.add_argument("pom")
    o.add_argument("overrides")
    sub.add_parser("kafka-versions").add_argument("yaml")
    dr = sub.add_parser("drop")
    dr.add_argument("src")
    dr.add_argument("dropped")
    k = sub.add_parser("only-kafka")
    k.add_argument("version")
    k.add_argument("yaml")
    args = parser.parse_args(argv)
    try:
        if args.command == "digest":
            print(tree_digest(args.dir))
        elif args.command == "override":
            with open(args.pom, encoding="utf-8") as f:
                pom = f.read()
            overrides = read_overrides(args.overrides)
            with open(args.pom, "w", encoding="utf-8") as f:
                f.write(apply_overrides(pom, overrides))
            for o in overrides:
                print(f"{o['group']}:{o['artifact']} {o['upstream']} -> {o['ours']}", file=sys.stderr)
        elif args.command == "drop":
            for path in drop(args.src, read_dropped(args.dropped)):
                print(f"dropped from {path}", file=sys.stderr)
        elif args.command == "only-kafka":
            with open(args.yaml, encoding="utf-8") as f:
                text = only_kafka(f.read(), args.version)
            with open(args.yaml, "w", encoding="utf-8") as f:
                f.write(text)
        else:
            with open(args.yaml, encoding="utf-8") as f:
                for version, maven in kafka_versions(f.read()):
                    print(version, maven)
    except (OSError, ValueError) as e:
        sys.exit(f"strimzi_source {args.command}: {e}")


if __name__ == "__main__":
    main(sys.argv[1:])
