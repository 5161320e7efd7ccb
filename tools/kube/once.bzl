"""build_once: what @kube_binaries, @kube_node and @kube_router share.

Each runs a script of tools/kube that builds its binaries once per machine into
$TALLY_HOME/<folder>/<key> (or finds them there) and prints that directory on its last line; the
repository then only links the files. All three share one Go build cache, so a later build reuses
the packages an earlier one compiled.
"""

def build_once(rctx, script, what, binaries):
    """Runs script, checks that bin/<name> exists for each of binaries, and returns the directory.

    Args:
      rctx: the repository context.
      script: the path of the script to run.
      what: what is built, for the progress line and errors.
      binaries: names expected under the directory's bin/.
    """
    rctx.report_progress("building %s once per machine (tools/kube/%s)" % (what, script.basename))
    tally_home = rctx.os.environ.get("TALLY_HOME", "/var/cache/tally")
    result = rctx.execute(
        ["bash", str(script)],
        # Go needs a build cache; a repository rule's environment need not have a HOME for it.
        environment = {"GOCACHE": tally_home + "/kube/go-build"},
        timeout = 3600,
        quiet = False,
    )
    if result.return_code != 0:
        fail("%s: tools/kube/%s failed:\n%s" % (what, script.basename, result.stderr))
    out = result.stdout.strip().splitlines()[-1]
    for name in binaries:
        if not rctx.path(out + "/bin/" + name).exists:
            fail("%s: %s/bin/%s is missing" % (what, out, name))
    return out
