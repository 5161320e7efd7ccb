"""maven_jars: the runtime jars of a pom.xml's dependencies, resolved by the toolchain's Maven.

rules_jvm_external is not obtainable offline here, and Tally needs jars only to run a program
(the Kafka broker), not to compile Java, so a repository rule runs `mvn dependency:copy-dependencies`
and exposes the result as one directory. Maven reads its repository from the machine's own
settings; downloads are cached in $TALLY_HOME/m2 across checkouts.
"""

def _maven_jars_impl(rctx):
    mvn = rctx.which("mvn")
    if not mvn:
        fail("maven_jars: mvn is not on PATH (tools/bazel provides it)")
    rctx.symlink(rctx.attr.pom, "pom.xml")
    local_repo = rctx.os.environ.get("TALLY_HOME", "/var/cache/tally") + "/m2"
    result = rctx.execute(
        [
            mvn,
            "--batch-mode",
            "--quiet",
            "-Dmaven.repo.local=" + local_repo,
            "-DoutputDirectory=jars",
            "-DincludeScope=runtime",
            "dependency:copy-dependencies",
        ],
        timeout = 600,
    )
    if result.return_code != 0:
        fail("maven_jars: mvn dependency:copy-dependencies failed:\n%s%s" % (result.stdout, result.stderr))
    rctx.file("BUILD.bazel", """\
# The jars Maven resolved from {pom}, as one directory.
exports_files(["jars"], visibility = ["//visibility:public"])
""".format(pom = str(rctx.attr.pom)))

maven_jars = repository_rule(
    implementation = _maven_jars_impl,
    attrs = {"pom": attr.label(mandatory = True, allow_single_file = [".xml"])},
    environ = ["TALLY_HOME"],
)

_install = tag_class(attrs = {
    "name": attr.string(mandatory = True),
    "pom": attr.label(mandatory = True),
})

def _maven_extension_impl(mctx):
    for mod in mctx.modules:
        for install in mod.tags.install:
            maven_jars(name = install.name, pom = install.pom)

maven = module_extension(
    implementation = _maven_extension_impl,
    tag_classes = {"install": _install},
)
