"""kube_binaries: the test Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager,
kube-scheduler, kwok and kwok's Stage configs) as one repository.

Building them takes ~13 minutes on 2 cores, so it must not happen per test or per checkout: the
repository rule runs tools/kube/provision.sh, which builds once per machine into
$TALLY_HOME/kube/<key> (keyed by the script, versions.env and the Go version) and prints that
directory, and the repository only links to it. A change to the script or the versions makes
Bazel run the rule again, which builds a new key.
"""

def _kube_binaries_impl(rctx):
    script = rctx.path(rctx.attr.script)
    rctx.path(rctx.attr.versions)  # a dependency of the rule: a version bump refetches
    rctx.report_progress("building the test control plane once per machine (tools/kube/provision.sh)")
    result = rctx.execute(["bash", str(script)], timeout = 3600, quiet = False)
    if result.return_code != 0:
        fail("kube_binaries: tools/kube/provision.sh failed:\n%s" % result.stderr)
    out = result.stdout.strip().splitlines()[-1]
    for name in ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"]:
        if not rctx.path(out + "/bin/" + name).exists:
            fail("kube_binaries: %s/bin/%s is missing" % (out, name))
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

def _strimzi_crds_impl(rctx):
    # Strimzi's CRDs are data for the apply test, not part of the project: they are read from
    # the machine's shared folder beside the checkout (or $STRIMZI_CRDS), never copied in.
    workspace = rctx.path(Label("//:MODULE.bazel")).dirname
    src = rctx.os.environ.get("STRIMZI_CRDS") or "%s/shared/strimzi-crds" % workspace.dirname
    found = [f for f in rctx.path(src).readdir() if f.basename.endswith(".yaml")] if rctx.path(src).exists else []
    for f in found:
        rctx.symlink(f, "crds/" + f.basename)
    if not found:
        rctx.file("crds/MISSING", "no Strimzi CRDs (*.yaml) in %s; set STRIMZI_CRDS to their folder\n" % src)
    rctx.file("BUILD.bazel", """\
# Strimzi's CustomResourceDefinitions from {src} (crds/MISSING says why when there are none).
exports_files(["crds"], visibility = ["//visibility:public"])
""".format(src = src))

strimzi_crds = repository_rule(
    implementation = _strimzi_crds_impl,
    environ = ["STRIMZI_CRDS"],
)

def _kube_extension_impl(_mctx):
    kube_binaries(name = "kube_binaries")
    strimzi_crds(name = "strimzi_crds")

kube = module_extension(implementation = _kube_extension_impl)
