"""kube_binaries: the test Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager,
kube-scheduler, kwok and kwok's Stage configs) as one repository.

Building them takes ~13 minutes on 2 cores, so it must not happen per test or per checkout: the
repository rule runs tools/kube/provision.sh, which builds once per machine into
$TALLY_HOME/kube/<key> (keyed by the script, versions.env and the Go version) and prints that
directory, and the repository only links to it. A change to the script or the versions makes
Bazel run the rule again, which builds a new key.
"""

load(":once.bzl", "build_once")

def _kube_binaries_impl(rctx):
    rctx.path(rctx.attr.versions)  # a dependency of the rule: a version bump refetches
    out = build_once(rctx, rctx.path(rctx.attr.script), "the test control plane",
                     ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"])
    rctx.symlink(out + "/bin", "bin")
    rctx.symlink(out + "/stages", "stages")
    rctx.file("BUILD.bazel", """\
# The test control plane, built by tools/kube/provision.sh into {out}: the directories bin/
# (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok) and stages/ (kwok's).
exports_files(["bin", "stages"], visibility = ["//visibility:public"])
""".format(out = out))

kube_binaries = repository_rule(
    implementation = _kube_binaries_impl,
    attrs = {
        "script": attr.label(default = "//tools/kube:provision.sh", allow_single_file = True),
        "versions": attr.label(default = "//tools/kube:versions.env", allow_single_file = True),
    },
    environ = ["TALLY_HOME", "GOPROXY"],
)

def _yaml_files(rctx, folder):
    path = rctx.path(folder)
    if not path.exists:
        return []
    return [f for f in path.readdir() if f.basename.endswith(".yaml")]

def _strimzi_install_impl(rctx):
    # Strimzi's released install files (its operator and CRDs) are test data, not part of the
    # project: read from $STRIMZI_INSTALL, else from the machine's shared folder (TALLY_SHARED,
    # which tools/toolchain/enter finds beside the checkout or one of its parents). Whichever is
    # found is also kept in $TALLY_HOME/shared/strimzi-install, so a clone elsewhere on the
    # machine (CI's) finds them too. k8s/strimzi checks them against the pinned sums.
    cache = rctx.os.environ.get("TALLY_HOME", "/var/cache/tally") + "/shared/strimzi-install"
    shared = rctx.os.environ.get("TALLY_SHARED", "")
    candidates = [rctx.os.environ.get("STRIMZI_INSTALL", ""), shared + "/strimzi-install" if shared else "", cache]
    src, found = None, []
    for candidate in [c for c in candidates if c]:
        found = _yaml_files(rctx, candidate)
        if found:
            src = candidate
            break
    if found and src != cache:
        rctx.execute(["mkdir", "-p", cache])
        rctx.execute(["cp"] + [str(f) for f in found] + [cache + "/"])
    for f in found:
        # Linked, not read and written: rctx.file would re-encode non-ASCII bytes, and the files
        # are checked against their released sha256.
        rctx.symlink(f, "install/" + f.basename)
    if not found:
        rctx.file("install/MISSING", "no Strimzi install files (*.yaml) in any of %s; set STRIMZI_INSTALL to their folder\n" %
                                     ", ".join([c for c in candidates if c]))
    rctx.file("BUILD.bazel", """\
# Strimzi's released cluster-operator install files from {src} (install/MISSING says why when
# there are none).
exports_files(["install"], visibility = ["//visibility:public"])
""".format(src = src))

strimzi_install = repository_rule(
    implementation = _strimzi_install_impl,
    environ = ["STRIMZI_INSTALL", "TALLY_HOME", "TALLY_SHARED"],
)

def _kube_extension_impl(_mctx):
    kube_binaries(name = "kube_binaries")
    strimzi_install(name = "strimzi_install")

kube = module_extension(implementation = _kube_extension_impl)
