"""OCI images without Docker: layer_tar, oci_image and oci_push (docs/images.md).

rules_oci is not obtainable offline here, so these rules keep its interface where they overlap:
`oci_image(name, base, tars, entrypoint, cmd, env, user, workdir, exposed_ports, labels,
annotations, os, architecture, variant)` writes an OCI layout directory named after the target
and `<name>.digest` (`sha256:<hex>`); `oci_push` pushes by digest, then tags. `layer_tar` stands
in for rules_pkg's pkg_tar / bazel_lib's tar: it writes a plain, reproducible tar (sorted, owner
0:0 unless told otherwise, every mtime 1970-01-01), so switching to rules_oci later changes the
load() lines and little else. The work is done by //tools/oci/ocitool (go-containerregistry).
"""

_OCITOOL = "//tools/oci/ocitool"

# What oci_reproducibility_test needs to rebuild a layer or an image from its inputs, in the
# test's runfiles: the same spec with inputs under r/ (the runfiles root) and outputs under out/.
OciLayerInfo = provider(
    doc = "A layer_tar's spec in runfiles terms.",
    fields = {"tar": "the layer tar", "test_spec": "spec File", "inputs": "depset of input Files"},
)
OciImageInfo = provider(
    doc = "An oci_image's spec in runfiles terms.",
    fields = {
        "base": "the base's OciImageInfo, or None",
        "digest": "the .digest File",
        "layers": "list of OciLayerInfo",
        "layout": "the layout directory",
        "test_spec": "spec File",
    },
)

def _in_runfiles(f):
    return "r/" + f.short_path

def _rebuilt(f):
    return "out/" + f.short_path

def _relative_to_package(f):
    """The file's path below its package (or below its repository, for external files)."""
    path = f.short_path
    if path.startswith("../"):
        path = path.split("/", 2)[2]
    pkg = f.owner.package
    if pkg and path.startswith(pkg + "/"):
        path = path[len(pkg) + 1:]
    return path

def _layer_entries(ctx, path_of):
    entries = []
    for target, dest in ctx.attr.files.items():
        files = target.files.to_list()
        if len(files) == 1 and not dest.endswith("/"):
            entries.append({"dest": dest, "src": path_of(files[0])})
            continue
        if not dest.endswith("/"):
            fail("layer_tar: %s has %d files; its destination %r must end with / (each file then keeps its path below its package)" % (target.label, len(files), dest))
        for f in files:
            entries.append({"dest": dest + _relative_to_package(f), "src": path_of(f)})
    for t in ctx.files.tars:
        entries.append({"tar": path_of(t)})
    for link, target in ctx.attr.symlinks.items():
        entries.append({"dest": link, "link": target})
    for path, how in ctx.attr.dirs.items():
        parts = how.split(":")
        if len(parts) not in (1, 3):
            fail("layer_tar: dirs[%r] = %r: want \"mode\" or \"mode:uid:gid\"" % (path, how))
        entry = {"dest": path, "dir": True, "mode": int(parts[0], 8)}
        if len(parts) == 3:
            entry["uid"] = int(parts[1])
            entry["gid"] = int(parts[2])
        entries.append(entry)
    return json.encode({
        "entries": entries,
        "exclude": ctx.attr.exclude,
        "keep": ctx.attr.keep,
        "merged_usr": ctx.attr.merged_usr,
    })

def _layer_tar_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".tar")
    inputs = ctx.files.files + ctx.files.tars
    spec = ctx.actions.declare_file(ctx.label.name + ".layer.json")
    ctx.actions.write(spec, _layer_entries(ctx, lambda f: f.path))
    test_spec = ctx.actions.declare_file(ctx.label.name + ".layer.test.json")
    ctx.actions.write(test_spec, _layer_entries(ctx, _in_runfiles))
    ctx.actions.run(
        executable = ctx.executable._ocitool,
        arguments = ["layer", "--spec", spec.path, "--out", out.path],
        inputs = inputs + [spec],
        outputs = [out],
        mnemonic = "OciLayer",
        progress_message = "Writing layer %{label}",
    )
    return [
        DefaultInfo(files = depset([out])),
        OciLayerInfo(tar = out, test_spec = test_spec, inputs = depset(inputs)),
    ]

layer_tar = rule(
    implementation = _layer_tar_impl,
    attrs = {
        "dirs": attr.string_dict(doc = "Empty directories: path -> \"mode\" or \"mode:uid:gid\" (octal mode), e.g. {\"/tmp\": \"1777\"}."),
        "exclude": attr.string_list(doc = "Drop paths under these prefixes (no leading /, e.g. usr/share/doc/)..."),
        "files": attr.label_keyed_string_dict(
            allow_files = True,
            doc = "label -> path in the layer. A label of one file or directory goes exactly there; " +
                  "a path ending in / takes each of the label's files at its path below its package.",
        ),
        "keep": attr.string_list(doc = "...unless they match one of these path.Match patterns (usr/share/doc/*/copyright)."),
        "merged_usr": attr.bool(doc = "Move the tars' bin/, sbin/ and lib*/ under usr/, as Debian's merged /usr does."),
        "symlinks": attr.string_dict(doc = "link path -> target."),
        "tars": attr.label_list(allow_files = [".tar"], doc = "Tars whose entries are merged in, owned by root (e.g. Debian package data)."),
        "_ocitool": attr.label(default = _OCITOOL, executable = True, cfg = "exec"),
    },
    doc = "A reproducible layer tar: sorted entries, every mtime 1970-01-01, owner 0:0 unless dirs says otherwise.",
)

def _image_spec(ctx, base, path_of):
    return json.encode({
        "annotations": ctx.attr.annotations,
        "architecture": ctx.attr.architecture,
        "base": path_of(base) if base else "",
        "cmd": ctx.attr.cmd if ctx.attr.cmd else None,
        "created_by": "bazel build " + str(ctx.label),
        "entrypoint": ctx.attr.entrypoint if ctx.attr.entrypoint else None,
        "env": ctx.attr.env,
        "exposed_ports": ctx.attr.exposed_ports,
        "labels": ctx.attr.labels,
        "layers": [path_of(t) for t in ctx.files.tars],
        "os": ctx.attr.os,
        "user": ctx.attr.user,
        "variant": ctx.attr.variant,
        "workdir": ctx.attr.workdir,
    })

def _oci_image_impl(ctx):
    layout = ctx.actions.declare_directory(ctx.label.name)
    base = ctx.attr.base[OciImageInfo] if ctx.attr.base else None
    spec = ctx.actions.declare_file(ctx.label.name + ".image.json")
    ctx.actions.write(spec, _image_spec(ctx, base.layout if base else None, lambda f: f.path))
    test_spec = ctx.actions.declare_file(ctx.label.name + ".image.test.json")
    ctx.actions.write(test_spec, _image_spec(ctx, base.layout if base else None, _rebuilt))
    ctx.actions.run(
        executable = ctx.executable._ocitool,
        arguments = ["image", "--spec", spec.path, "--out", layout.path, "--digest", ctx.outputs.digest.path],
        inputs = ctx.files.tars + ([base.layout] if base else []) + [spec],
        outputs = [layout, ctx.outputs.digest],
        mnemonic = "OciImage",
        progress_message = "Writing image %{label}",
    )
    return [
        DefaultInfo(files = depset([layout])),
        OciImageInfo(
            base = base,
            digest = ctx.outputs.digest,
            layers = [t[OciLayerInfo] for t in ctx.attr.tars],
            layout = layout,
            test_spec = test_spec,
        ),
    ]

oci_image = rule(
    implementation = _oci_image_impl,
    attrs = {
        "annotations": attr.string_dict(doc = "Manifest annotations."),
        "architecture": attr.string(default = "amd64"),
        "base": attr.label(providers = [OciImageInfo], doc = "An oci_image to build on; none means an empty base."),
        "cmd": attr.string_list(doc = "Default arguments (replaces the base's)."),
        "entrypoint": attr.string_list(doc = "Entrypoint (replaces the base's, and drops its cmd)."),
        "env": attr.string_dict(doc = "Environment, merged over the base's."),
        "exposed_ports": attr.string_list(doc = "e.g. [\"8080/tcp\"]."),
        "labels": attr.string_dict(doc = "Config labels."),
        "os": attr.string(default = "linux"),
        "tars": attr.label_list(providers = [OciLayerInfo], doc = "Layers, bottom first (layer_tar targets)."),
        "user": attr.string(doc = "uid[:gid] the process runs as."),
        "variant": attr.string(),
        "workdir": attr.string(),
        "_ocitool": attr.label(default = _OCITOOL, executable = True, cfg = "exec"),
    },
    outputs = {"digest": "%{name}.digest"},
    doc = "An OCI image as a layout directory named after the target, plus <name>.digest (sha256:<hex>).",
)

def _shell_quote(s):
    return "'" + s.replace("'", "'\\''") + "'"

def _oci_push_impl(ctx):
    args = [
        "push",
        "--default-registry",
        ctx.attr.registry,
        "--default-repository",
        ctx.attr.repository,
    ]
    for tag in ctx.attr.remote_tags:
        args += ["--default-tag", tag]
    settings = []
    if ctx.file.settings:
        settings = [ctx.file.settings]
        args += ["--settings", ctx.file.settings.short_path]
    layouts = []
    for target, short in sorted(ctx.attr.images.items(), key = lambda item: item[1]):
        layout = target[OciImageInfo].layout
        layouts.append(layout)
        args += ["--image", "%s=%s" % (short, layout.short_path)]
    launcher = ctx.actions.declare_file(ctx.label.name + ".sh")
    ctx.actions.write(launcher, """#!/usr/bin/env bash
# Generated by //tools/oci:defs.bzl oci_push for {label}.
set -euo pipefail
runfiles=${{RUNFILES_DIR:-$0.runfiles}}
[[ -d $runfiles/_main ]] && cd "$runfiles/_main"
exec {tool} {args} "$@"
""".format(
        label = ctx.label,
        tool = _shell_quote(ctx.executable._ocitool.short_path),
        args = " ".join([_shell_quote(a) for a in args]),
    ), is_executable = True)
    runfiles = ctx.runfiles(files = layouts + settings + [ctx.executable._ocitool])
    runfiles = runfiles.merge(ctx.attr._ocitool[DefaultInfo].default_runfiles)
    return [DefaultInfo(executable = launcher, runfiles = runfiles)]

oci_push = rule(
    implementation = _oci_push_impl,
    executable = True,
    attrs = {
        "images": attr.label_keyed_string_dict(
            mandatory = True,
            providers = [OciImageInfo],
            doc = "oci_image -> its name under the repository prefix, e.g. {\"//k8s/images:api\": \"api\"}.",
        ),
        "registry": attr.string(default = "docker.io", doc = "Default registry host[:port]; --registry or $TALLY_REGISTRY override it."),
        "remote_tags": attr.string_list(default = ["latest"], doc = "Tags set after the push by digest; --tag (repeatable) replaces them."),
        "repository": attr.string(default = "tally", doc = "Default repository prefix; --repository or $TALLY_REPOSITORY override it."),
        "settings": attr.label(
            allow_single_file = True,
            doc = "A deployment's settings file whose registry and repository replace the defaults above " +
                  "(the flags and $TALLY_* still override them).",
        ),
        "_ocitool": attr.label(default = _OCITOOL, executable = True, cfg = "target"),
    },
    doc = "bazel run: pushes each image as <registry>/<repository>/<name>@sha256:..., then tags it, " +
          "and prints one repo@sha256:... line per image. Credentials: the docker config file only.",
)

# Images stack at most this deep (Starlark has no recursion, so chains are walked in a loop).
_MAX_BASES = 16

def _image_chain(info):
    """info's image and its bases, base first."""
    chain = []
    for _ in range(_MAX_BASES):
        if not info:
            return reversed(chain)
        chain.append(info)
        info = info.base
    fail("oci image chain deeper than %d" % _MAX_BASES)

def _oci_reproducibility_test_impl(ctx):
    steps, seen, files, inputs = [], {}, [], []
    for target in ctx.attr.images:
        for info in _image_chain(target[OciImageInfo]):
            if info.layout.short_path in seen:
                continue
            seen[info.layout.short_path] = True
            for layer in info.layers:
                files += [layer.tar, layer.test_spec]
                inputs.append(layer.inputs)
                if layer.tar.short_path not in seen:
                    seen[layer.tar.short_path] = True
                    steps.append("layer %s %s" % (layer.test_spec.short_path, layer.tar.short_path))
            files += [info.layout, info.digest, info.test_spec]
            steps.append("image %s %s %s" % (info.test_spec.short_path, info.layout.short_path, info.digest.short_path))
    plan = ctx.actions.declare_file(ctx.label.name + ".steps")
    ctx.actions.write(plan, "\n".join(steps) + "\n")
    launcher = ctx.actions.declare_file(ctx.label.name + ".sh")
    ctx.actions.write(launcher, """#!/usr/bin/env bash
# Generated by //tools/oci:defs.bzl oci_reproducibility_test.
exec {script} {tool} {plan}
""".format(
        script = _shell_quote(ctx.executable._script.short_path),
        tool = _shell_quote(ctx.executable._ocitool.short_path),
        plan = _shell_quote(plan.short_path),
    ), is_executable = True)
    runfiles = ctx.runfiles(
        files = files + [plan, ctx.executable._ocitool, ctx.executable._script],
        transitive_files = depset(transitive = inputs),
    )
    runfiles = runfiles.merge(ctx.attr._ocitool[DefaultInfo].default_runfiles)
    return [DefaultInfo(executable = launcher, runfiles = runfiles)]

oci_reproducibility_test = rule(
    implementation = _oci_reproducibility_test_impl,
    test = True,
    attrs = {
        "images": attr.label_list(mandatory = True, providers = [OciImageInfo]),
        "_ocitool": attr.label(default = _OCITOOL, executable = True, cfg = "target"),
        "_script": attr.label(default = "//tools/oci:reproducibility_test.sh", allow_single_file = True, executable = True, cfg = "target"),
    },
    doc = "Rebuilds each image, its layers and its bases from their inputs (twice for the image) " +
          "and fails unless every tar and digest equals Bazel's, and each .digest names the " +
          "manifest its layout's index.json holds.",
)
