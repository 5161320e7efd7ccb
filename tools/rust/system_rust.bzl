"""The system's Rust (Debian's rustc, cargo and wasm32 std) as rules_rust toolchains.

rules_rust would otherwise download Rust; this repository symlinks the installed one instead and
declares a toolchain for the host (x86_64-unknown-linux-gnu) and for wasm32-wasip1.
"""

_HOST = "x86_64-unknown-linux-gnu"
_WASM = "wasm32-wasip1"

_BUILD = """\
load("@rules_rust//rust:toolchain.bzl", "rust_stdlib_filegroup", "rust_toolchain")

package(default_visibility = ["//visibility:public"])

filegroup(name = "rustc", srcs = ["bin/rustc"])
filegroup(name = "rustdoc", srcs = ["bin/rustdoc"])
filegroup(name = "cargo", srcs = ["bin/cargo"])
filegroup(name = "rustc_lib", srcs = glob(["lib/*.so*"]))

rust_stdlib_filegroup(
    name = "std_{host}",
    # lib/** so that self-contained/ (crt objects, libc) comes along.
    srcs = glob(["lib/rustlib/{host}/lib/**"]),
)

rust_stdlib_filegroup(
    name = "std_{wasm}",
    srcs = glob(["lib/rustlib/{wasm}/lib/**"]),
)

[
    rust_toolchain(
        name = "rust_" + triple,
        binary_ext = ext,
        cargo = ":cargo",
        default_edition = "2021",
        dylib_ext = dylib_ext,
        exec_triple = "{host}",
        extra_rustc_flags = flags,
        opt_level = opt_level,
        strip_level = strip_level,
        rust_doc = ":rustdoc",
        rust_std = ":std_" + triple,
        rustc = ":rustc",
        rustc_lib = ":rustc_lib",
        staticlib_ext = ".a",
        stdlib_linkflags = linkflags,
        target_triple = triple,
    )
    for triple, ext, dylib_ext, flags, linkflags, opt_level, strip_level in [
        (
            "{host}",
            "",
            ".so",
            [],
            ["-ldl", "-lpthread"],
            {{"dbg": "0", "fastbuild": "0", "opt": "3"}},
            {{"dbg": "none", "fastbuild": "none", "opt": "debuginfo"}},
        ),
        # Debian has no rust-lld; lld's wasm linker links the module. Wasm code exists to be
        # shipped and measured (docs/wasm.md), so it is optimized and stripped in every mode
        # but dbg, like `cargo build --release`.
        (
            "{wasm}",
            ".wasm",
            ".wasm",
            ["-Clinker=wasm-ld-{lld}"],
            [],
            {{"dbg": "0", "fastbuild": "3", "opt": "3"}},
            {{"dbg": "none", "fastbuild": "debuginfo", "opt": "debuginfo"}},
        ),
    ]
]

toolchain(
    name = "toolchain_{host}",
    exec_compatible_with = ["@platforms//cpu:x86_64", "@platforms//os:linux"],
    target_compatible_with = ["@platforms//cpu:x86_64", "@platforms//os:linux"],
    toolchain = ":rust_{host}",
    toolchain_type = "@rules_rust//rust:toolchain_type",
)

toolchain(
    name = "toolchain_{wasm}",
    exec_compatible_with = ["@platforms//cpu:x86_64", "@platforms//os:linux"],
    target_compatible_with = ["@platforms//cpu:wasm32", "@platforms//os:wasi"],
    toolchain = ":rust_{wasm}",
    toolchain_type = "@rules_rust//rust:toolchain_type",
)
"""

def _system_rust_impl(rctx):
    rustc = rctx.which("rustc")
    if not rustc:
        fail("system_rust: rustc is not on PATH (tools/bazel provides it; see docs/build.md)")
    sysroot = rctx.execute([rustc, "--print", "sysroot"]).stdout.strip()
    for tool in ["rustc", "rustdoc", "cargo"]:
        path = rctx.which(tool)
        if not path:
            fail("system_rust: %s is not on PATH" % tool)
        rctx.symlink(path, "bin/" + tool)
    for triple in [_HOST, _WASM]:
        std = rctx.path("%s/lib/rustlib/%s/lib" % (sysroot, triple))
        if not std.exists:
            fail("system_rust: no Rust std for %s under %s (install libstd-rust-dev-wasm32)" % (triple, sysroot))
        rctx.symlink(std, "lib/rustlib/%s/lib" % triple)

    # rustc loads librustc_driver from the system library path; keep it among the inputs.
    libdirs = [sysroot + "/lib", sysroot + "/lib/" + _HOST.replace("-unknown", "")]
    for libdir in libdirs:
        found = rctx.execute(["sh", "-c", "ls %s/librustc_driver-*.so 2>/dev/null" % libdir]).stdout.splitlines()
        for lib in found:
            rctx.symlink(lib, "lib/" + lib.split("/")[-1])
    rctx.file("BUILD.bazel", _BUILD.format(host = _HOST, wasm = _WASM, lld = rctx.attr.lld_version))

system_rust_repository = repository_rule(
    implementation = _system_rust_impl,
    attrs = {"lld_version": attr.string(default = "22")},
    environ = ["PATH"],
    local = True,
)

def _system_rust_extension_impl(_mctx):
    system_rust_repository(name = "system_rust")

system_rust = module_extension(implementation = _system_rust_extension_impl)
