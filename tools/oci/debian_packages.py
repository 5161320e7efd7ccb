"""Fetches Debian packages and their dependency closure as data tars, for base image layers.

Run by the debian_packages repository rule (debian.bzl) inside the toolchain root:

    python3 debian_packages.py OUT_DIR CACHE_DIR --package nodejs [--exclude debconf]...

The closure is resolved against the packages installed in the toolchain root (/var/lib/dpkg/status),
so a base holds exactly the versions Tally's binaries were built and tested with, from the same
Debian release. Each .deb is taken from CACHE_DIR (kept under $TALLY_HOME/debs, keyed by file
name = package, version and architecture), else from the root's apt archive cache, else downloaded
with `apt-get download` through the root's own apt sources, and checked against apt's SHA256. Writes
OUT_DIR/<package>.tar (the package's data, `dpkg-deb --fsys-tarfile`), OUT_DIR/packages.txt and,
when ca-certificates is fetched, OUT_DIR/ca-certificates.crt (Mozilla's bundle only: the machine's
own extra CAs must not end up in images).
"""

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile

STATUS = "/var/lib/dpkg/status"
APT_ARCHIVES = "/var/cache/apt/archives"


def parse_status(path):
    """Installed packages: name -> fields; and virtual name -> providers."""
    installed, provides = {}, {}
    with open(path, encoding="utf-8") as f:
        for stanza in f.read().split("\n\n"):
            fields, key = {}, None
            for line in stanza.splitlines():
                if line.startswith((" ", "\t")) and key:
                    fields[key] += "\n" + line
                elif ":" in line:
                    key, _, value = line.partition(":")
                    fields[key] = value.strip()
            if not fields.get("Package") or "installed" not in fields.get("Status", "").split():
                continue
            installed[fields["Package"]] = fields
            for item in split_list(fields.get("Provides", "")):
                provides.setdefault(item, []).append(fields["Package"])
    return installed, provides


def split_list(value):
    """Names from a Provides-style list, without versions or architecture qualifiers."""
    return [re.split(r"[\s(:\[]", item.strip(), maxsplit=1)[0] for item in value.split(",") if item.strip()]


def dependency_groups(fields):
    """Depends and Pre-Depends as lists of alternative names."""
    groups = []
    for key in ("Pre-Depends", "Depends"):
        for group in fields.get(key, "").split(","):
            if group.strip():
                groups.append(split_list(group.replace("|", ",")))
    return groups


def closure(roots, installed, provides, exclude):
    """Every installed package the roots need, sorted; an excluded name cuts its whole group."""
    needed, queue = set(), list(roots)
    while queue:
        name = queue.pop()
        if name in needed:
            continue
        if name not in installed:
            sys.exit(f"debian_packages: {name} is not installed in the toolchain root; add it to tools/toolchain/packages.txt")
        needed.add(name)
        for group in dependency_groups(installed[name]):
            if any(alt in exclude for alt in group):
                continue
            choice = None
            for alt in group:
                if alt in installed:
                    choice = alt
                    break
                providers = sorted(p for p in provides.get(alt, []) if p not in exclude)
                if providers:
                    choice = providers[0]
                    break
            if choice is None:
                sys.exit(f"debian_packages: {name} needs one of {group}, none installed")
            queue.append(choice)
    return sorted(needed)


def apt_sha256(name, version):
    out = subprocess.run(
        ["apt-cache", "show", "--no-all-versions", f"{name}={version}"],
        check=False, capture_output=True, text=True,
    ).stdout
    m = re.search(r"^SHA256: ([0-9a-f]{64})$", out, re.M)
    return m.group(1) if m else None


def fetch_deb(name, fields, cache):
    version, arch = fields["Version"], fields["Architecture"]
    filename = f"{name}_{version.replace(':', '%3a')}_{arch}.deb"
    cached = os.path.join(cache, filename)
    if os.path.exists(cached):
        return cached
    want = apt_sha256(name, version)
    local = os.path.join(APT_ARCHIVES, filename)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        if os.path.exists(local):
            shutil.copy(local, tmp)
        else:
            subprocess.run(["apt-get", "download", "-q", f"{name}={version}"], cwd=tmp, check=True,
                           stdout=subprocess.DEVNULL)
        got = os.path.join(tmp, filename)
        if not os.path.exists(got):
            sys.exit(f"debian_packages: apt-get download {name}={version} wrote no {filename}")
        digest = hashlib.sha256(open(got, "rb").read()).hexdigest()
        if want and digest != want:
            sys.exit(f"debian_packages: {filename} has SHA256 {digest}, apt says {want}")
        os.replace(got, cached)
    return cached


def write_ca_bundle(data_tar, out):
    """Concatenates ca-certificates' Mozilla certificates, sorted by name."""
    with tarfile.open(data_tar) as tf:
        members = sorted(
            (m for m in tf.getmembers() if m.isfile() and m.name.startswith("./usr/share/ca-certificates/mozilla/")),
            key=lambda m: m.name,
        )
        if not members:
            sys.exit("debian_packages: ca-certificates holds no Mozilla certificates")
        with open(out, "wb") as f:
            for m in members:
                pem = tf.extractfile(m).read()
                f.write(pem if pem.endswith(b"\n") else pem + b"\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("cache")
    parser.add_argument("--package", action="append", required=True)
    parser.add_argument("--exclude", action="append", default=[])
    args = parser.parse_args()
    os.makedirs(args.cache, exist_ok=True)
    installed, provides = parse_status(STATUS)
    names = closure(args.package, installed, provides, set(args.exclude))
    lines = []
    for name in names:
        fields = installed[name]
        deb = fetch_deb(name, fields, args.cache)
        tar = os.path.join(args.out, name + ".tar")
        with open(tar, "wb") as f:
            subprocess.run(["dpkg-deb", "--fsys-tarfile", deb], stdout=f, check=True)
        lines.append(f"{name} {fields['Version']} {fields['Architecture']}\n")
        if name == "ca-certificates":
            write_ca_bundle(tar, os.path.join(args.out, "ca-certificates.crt"))
    with open(os.path.join(args.out, "packages.txt"), "w", encoding="utf-8") as f:
        f.writelines(lines)


if __name__ == "__main__":
    main()
