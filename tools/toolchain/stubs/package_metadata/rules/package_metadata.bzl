"""Stub of supply-chain's package_metadata rule: gazelle's generated repositories load it."""

def _package_metadata_impl(_ctx):
    return []

_package_metadata = rule(
    implementation = _package_metadata_impl,
    attrs = {
        "attributes": attr.label_list(),
        "purl": attr.string(),
    },
)

def package_metadata(**kwargs):
    # No licenses: REPO.bazel's default would point back at this very target and make a cycle.
    _package_metadata(applicable_licenses = [], **kwargs)
