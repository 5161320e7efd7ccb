"""kube_node: the binaries of a real test Kubernetes node (kubelet, kube-proxy, CoreDNS, pause);
kube_router: its NetworkPolicy enforcer (tools/kube/kube-router.sh).

Like @kube_binaries (kube.bzl), built once per machine by tools/kube/node.sh into
$TALLY_HOME/kube-node/<key>; the repository only links the files. A separate script and key, so
the node's build never invalidates the control plane's 13-minute build.
"""

load(":once.bzl", "build_once")

NODE_BINARIES = ["kubelet", "kube-proxy", "coredns", "pause"]

def _kube_node_impl(rctx):
    script = rctx.path(rctx.attr.script)
    for f in rctx.attr.inputs:
        rctx.path(f)  # dependencies of the rule: a version bump refetches

    # The control plane first: both builds compile most of k8s.io/kubernetes into the same
    # GOCACHE. Fetched side by side (Bazel fetches independent repositories in parallel) each
    # compiled it all, and on a brand-new 2-core machine the pair took 2,233 s instead of the
    # control plane's build plus the node's own packages.
    rctx.path(rctx.attr.after)
    out = build_once(rctx, script, "the test node's binaries", NODE_BINARIES)
    for name in NODE_BINARIES:
        rctx.symlink(out + "/bin/" + name, name)
    rctx.file("BUILD.bazel", """\
# The test node's binaries, built by tools/kube/node.sh into {out}.
exports_files({names}, visibility = ["//visibility:public"])
""".format(out = out, names = repr(NODE_BINARIES)))

kube_node = repository_rule(
    implementation = _kube_node_impl,
    attrs = {
        "script": attr.label(default = "//tools/kube:node.sh", allow_single_file = True),
        "after": attr.label(default = "@kube_binaries//:bin"),
        "inputs": attr.label_list(default = [
            "//tools/kube:versions.env",
            "//tools/kube:node-versions.env",
        ], allow_files = True),
    },
    environ = ["TALLY_HOME", "GOPROXY"],
)

def _kube_router_impl(rctx):
    script = rctx.path(rctx.attr.script)

    # After the node's binaries, so that a brand-new machine never compiles two Go programs at
    # once and kube-router's build finds the standard library (and any shared package) in the
    # same GOCACHE.
    rctx.path(rctx.attr.after)
    out = build_once(rctx, script, "kube-router, the test node's NetworkPolicy enforcer", ["kube-router"])
    rctx.symlink(out + "/bin/kube-router", "kube-router")
    rctx.file("BUILD.bazel", """\
# kube-router, built by tools/kube/kube-router.sh into {out}.
exports_files(["kube-router"], visibility = ["//visibility:public"])
""".format(out = out))

kube_router = repository_rule(
    implementation = _kube_router_impl,
    attrs = {
        "script": attr.label(default = "//tools/kube:kube-router.sh", allow_single_file = True),
        "after": attr.label(default = "@kube_node//:kubelet"),
    },
    environ = ["TALLY_HOME", "GOPROXY"],
)

def _kube_node_extension_impl(_mctx):
    kube_node(name = "kube_node")
    kube_router(name = "kube_router")

node = module_extension(implementation = _kube_node_extension_impl)
