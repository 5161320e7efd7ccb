"""Strimzi from its source: the release's source tree (@strimzi_source) and what Maven builds from
it once per machine (@strimzi_build). tools/strimzi/README.md tells the story.

@strimzi_source is the tag's tree, pinned by its content digest (strimzi_source.py digest): the
public repository's release archive and the machine's shared copy hold the same tree compressed
differently, so a digest of the archive's bytes could pin only one of them. The archive is taken
from $STRIMZI_SRC (the .tar.gz or its folder), else from strimzi-src/ in the machine's shared
folder (TALLY_SHARED, which tools/toolchain/enter sets), else from $TALLY_HOME/shared/strimzi-src
(where a found copy is kept for other clones on the machine), else downloaded from the release.

@strimzi_build runs tools/strimzi/build.sh on that tree (instant once built on the machine) and
links its result.
"""

STRIMZI_VERSION = "1.2.0"

_ARCHIVE = "strimzi-kafka-operator-%s.tar.gz" % STRIMZI_VERSION
_PREFIX = "strimzi-kafka-operator-%s" % STRIMZI_VERSION
_RELEASE_URL = "https://github.com/strimzi/strimzi-kafka-operator/archive/refs/tags/%s.tar.gz" % STRIMZI_VERSION

# strimzi_source.py digest of the tag 1.2.0's tree (commit 6c7b43c4af0db547c10463ba09d1dfa6f5e156a0).
TREE_SHA256 = "f470ccd72f833ddb159d0b3455f1db68bacbecfa1894dbacdc37fe9529509063"

def _find_archive(rctx, cache):
    candidates = []
    given = rctx.os.environ.get("STRIMZI_SRC", "")
    if given:
        candidates += [given, given + "/" + _ARCHIVE]
    shared = rctx.os.environ.get("TALLY_SHARED", "")
    if shared:
        candidates.append(shared + "/strimzi-src/" + _ARCHIVE)
    candidates.append(cache + "/" + _ARCHIVE)
    for c in candidates:
        p = rctx.path(c)
        if p.exists and not p.is_dir:
            return p
    return None

def _strimzi_source_impl(rctx):
    cache = rctx.os.environ.get("TALLY_HOME", "/var/cache/tally") + "/shared/strimzi-src"
    archive = _find_archive(rctx, cache)
    if archive:
        origin = str(archive)
    else:
        origin = _RELEASE_URL
        rctx.report_progress("downloading Strimzi %s's source" % STRIMZI_VERSION)
        rctx.download(_RELEASE_URL, _ARCHIVE)
        archive = rctx.path(_ARCHIVE)
    rctx.extract(archive, output = "src", stripPrefix = _PREFIX)
    tool = rctx.path(rctx.attr._tool)
    result = rctx.execute(["python3", str(tool), "digest", "src"])
    if result.return_code != 0:
        fail("strimzi_source: digest failed:\n" + result.stderr)
    digest = result.stdout.strip()
    if digest != TREE_SHA256:
        fail("strimzi_source: the tree from %s has digest %s, not the pinned %s (tools/strimzi/strimzi.bzl)" % (origin, digest, TREE_SHA256))
    # Kept for other clones on this machine (CI's), which may not see the shared folder.
    cached = cache + "/" + _ARCHIVE
    if str(archive) != cached:
        rctx.execute(["mkdir", "-p", cache])
        rctx.execute(["cp", str(archive), cached + ".tmp"])
        rctx.execute(["mv", cached + ".tmp", cached])
    if origin == _RELEASE_URL:
        rctx.delete(_ARCHIVE)
    rctx.file("tree.sha256", digest + "\n")
    rctx.file("BUILD.bazel", """\
# Strimzi {version}'s source tree (src/), from {origin}, content digest {digest}.
package(default_visibility = ["//visibility:public"])

exports_files(["src", "tree.sha256"])

# The images' scripts (docker-images/) and Strimzi's Kafka versions, file by file.
exports_files(glob(["src/docker-images/**"]) + ["src/kafka-versions.yaml", "src/release.version"])
""".format(version = STRIMZI_VERSION, origin = origin, digest = digest))

strimzi_source = repository_rule(
    implementation = _strimzi_source_impl,
    attrs = {"_tool": attr.label(default = "//tools/strimzi:strimzi_source.py", allow_single_file = True)},
    environ = ["STRIMZI_SRC", "TALLY_HOME", "TALLY_SHARED"],
    doc = "Strimzi's source tree, checked against TREE_SHA256.",
)

def _strimzi_build_impl(rctx):
    src = rctx.path(rctx.attr.source).dirname.get_child("src")
    # Dependencies of the rule (build.sh's key): a change rebuilds.
    rctx.path(rctx.attr._overrides)
    rctx.path(rctx.attr._dropped)
    rctx.path(rctx.attr._tool)
    rctx.path(rctx.attr._broker_pom)

    # A new toolchain root may bring another JDK or Maven, which are part of build.sh's key.
    rctx.watch("/var/lib/dpkg/status")
    tally_home = rctx.os.environ.get("TALLY_HOME", "/var/cache/tally")
    rctx.report_progress("building Strimzi %s with Maven once per machine (tools/strimzi/build.sh)" % STRIMZI_VERSION)
    result = rctx.execute(
        ["bash", str(rctx.path(rctx.attr._script)), str(src)],
        environment = {"TALLY_HOME": tally_home},
        timeout = 7200,
        quiet = False,
    )
    if result.return_code != 0:
        fail("strimzi_build: tools/strimzi/build.sh failed:\n%s" % result.stderr)
    out = result.stdout.strip().splitlines()[-1]
    for name in ["out/operator/bin", "out/operator/lib", "out/agents/kafka-agent.jar", "out/agents/tracing-agent.jar"]:
        if not rctx.path(out + "/" + name).exists:
            fail("strimzi_build: %s/%s is missing" % (out, name))
    rctx.symlink(out + "/out/operator", "operator")
    rctx.symlink(out + "/out/agents/kafka-agent.jar", "kafka-agent.jar")
    rctx.symlink(out + "/out/agents/tracing-agent.jar", "tracing-agent.jar")
    rctx.symlink(out + "/out/config-models", "config-models")
    rctx.symlink(out + "/SHA256SUMS", "SHA256SUMS")
    rctx.file("BUILD.bazel", """\
# Strimzi {version} built by tools/strimzi/build.sh into {out}: operator/ (bin/ and lib/ of the
# cluster, topic and user operators and kafka-init), the broker's agents and the generated Kafka
# config model.
package(default_visibility = ["//visibility:public"])

exports_files([
    "SHA256SUMS",
    "config-models",
    "kafka-agent.jar",
    "operator",
    "tracing-agent.jar",
])
""".format(version = STRIMZI_VERSION, out = out))

strimzi_build = repository_rule(
    implementation = _strimzi_build_impl,
    attrs = {
        "source": attr.label(default = "@strimzi_source//:tree.sha256", allow_single_file = True),
        "_broker_pom": attr.label(default = "//tools/strimzi/broker:pom.xml", allow_single_file = True),
        "_dropped": attr.label(default = "//tools/strimzi:dropped.txt", allow_single_file = True),
        "_overrides": attr.label(default = "//tools/strimzi:overrides.txt", allow_single_file = True),
        "_script": attr.label(default = "//tools/strimzi:build.sh", allow_single_file = True),
        "_tool": attr.label(default = "//tools/strimzi:strimzi_source.py", allow_single_file = True),
    },
    environ = ["TALLY_HOME"],
    doc = "Strimzi's operators and agents, built once per machine by tools/strimzi/build.sh.",
)

def _strimzi_extension_impl(_mctx):
    strimzi_source(name = "strimzi_source")
    strimzi_build(name = "strimzi_build")

strimzi = module_extension(implementation = _strimzi_extension_impl)
