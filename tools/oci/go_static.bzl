"""go_static: a go_binary rebuilt with cgo off, for images on an empty base.

The toolchain root has a C compiler, so rules_go links Go binaries against glibc by default. An
image with no libc needs them pure Go (statically linked by Go's own linker). rules_go's
go_binary(pure = "on") does this for a binary declared in the image's package; the binaries
here are gazelle's, in their service folders, so this rule applies the same setting
(@rules_go//go/config:pure) to an existing go_binary through a transition.
"""

def _pure_impl(_settings, _attr):
    return {"@rules_go//go/config:pure": True}

_pure = transition(
    implementation = _pure_impl,
    inputs = [],
    outputs = ["@rules_go//go/config:pure"],
)

def _go_static_impl(ctx):
    binary = ctx.attr.binary[0][DefaultInfo].files_to_run.executable
    out = ctx.actions.declare_file(ctx.label.name)
    ctx.actions.symlink(output = out, target_file = binary, is_executable = True)
    return [DefaultInfo(files = depset([out]), executable = out)]

go_static = rule(
    implementation = _go_static_impl,
    executable = True,
    attrs = {
        "binary": attr.label(mandatory = True, cfg = _pure, doc = "A go_binary."),
    },
    doc = "The go_binary `binary`, built pure Go (cgo off): a static executable.",
)
