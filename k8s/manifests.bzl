"""k8s_manifests: Tally's manifests, filled in with the deployment's settings, with every image of
ours pinned by digest (k8s/render).

The settings file is the label flag //k8s:settings (default k8s/settings.yaml); the Redis users'
keys come from proto/redis_keys.json.

The images map a bare name (what the manifests say: `image: consumer`) to an oci_image target
(//tools/oci:defs.bzl); the rule reads each image's `<target>.digest` file, so the manifests
change exactly when an image does. Outputs: `<name>.yaml` (the stream `kubectl apply` takes) and
`<name>.refs` (one "name registry/repository/name@sha256:..." line per image, which //k8s:apply
pushes). optional_images are the images built here that run only when the settings choose them
(Strimzi's with images.strimzi: ours, Redis with images.redis: ours, the MongoDB-wire server with
mongodb.server: ferretdb): in the refs exactly then, for //k8s:apply to push (and to install the
Strimzi operator with). `settings` renders with another settings file than //k8s:settings.
Third-party images get their digests from k8s/image-pins.txt.
"""

def _k8s_manifests_impl(ctx):
    out = ctx.outputs.yaml
    refs = ctx.outputs.refs
    args = ctx.actions.args()
    settings = ctx.file.settings or ctx.file._settings
    redis_keys = ctx.file._redis_keys
    args.add("--settings", settings)
    args.add("--redis-keys", redis_keys)
    args.add("--out", out)
    args.add("--refs", refs)
    args.add("--pins", ctx.file._pins)
    digests = []
    for target, name in ctx.attr.optional_digests.items():
        files = target.files.to_list()
        if len(files) != 1:
            fail("k8s_manifests: %s must be one .digest file" % target.label)
        digests.append(files[0])
        args.add("--optional-digest", "%s=%s" % (name, files[0].path))
    for target, name in ctx.attr.digests.items():
        files = target.files.to_list()
        if len(files) != 1:
            fail("k8s_manifests: %s must be one .digest file" % target.label)
        digests.append(files[0])
        args.add("--digest", "%s=%s" % (name, files[0].path))
    configmap_files = []
    for target, configmap in ctx.attr.configmaps.items():
        for f in target.files.to_list():
            configmap_files.append(f)
            args.add("--configmap", "%s=%s" % (configmap, f.path))
    args.add_all(ctx.files.srcs)
    ctx.actions.run(
        executable = ctx.executable._render,
        arguments = [args],
        inputs = ctx.files.srcs + digests + configmap_files + [settings, redis_keys, ctx.file._pins],
        outputs = [out, refs],
        mnemonic = "K8sRender",
        progress_message = "Rendering %{label}",
    )
    return [DefaultInfo(files = depset([out, refs]))]

_k8s_manifests = rule(
    implementation = _k8s_manifests_impl,
    outputs = {"refs": "%{name}.refs", "yaml": "%{name}.yaml"},
    attrs = {
        "configmaps": attr.label_keyed_string_dict(allow_files = True, doc = "files -> namespace/name of the ConfigMap holding them."),
        "digests": attr.label_keyed_string_dict(allow_files = [".digest"], doc = "<image>.digest -> bare image name."),
        "srcs": attr.label_list(allow_files = [".yaml"], mandatory = True),
        "optional_digests": attr.label_keyed_string_dict(allow_files = [".digest"], doc = "<image>.digest -> bare name, of the images built here that run when the settings choose them."),
        "settings": attr.label(allow_single_file = True, doc = "A settings file in place of //k8s:settings."),
        "_pins": attr.label(default = "//k8s:image-pins.txt", allow_single_file = True),
        "_redis_keys": attr.label(default = "//proto:redis_keys", allow_single_file = True),
        "_render": attr.label(default = "//k8s/render", executable = True, cfg = "exec"),
        "_settings": attr.label(default = "//k8s:settings", allow_single_file = True),
    },
)

def k8s_manifests(name, images, optional_images = {}, **kwargs):
    """Renders manifests; images maps a bare image name to its oci_image label.

    Args:
      name: the target; outputs <name>.yaml and <name>.refs.
      images: {"consumer": "//k8s/images:consumer", ...}.
      optional_images: {"strimzi-operator": "//k8s/images/strimzi:operator", ...}.
      **kwargs: srcs, configmaps, settings, visibility. The registry and repository prefix come
        from the settings.
    """
    _k8s_manifests(
        name = name,
        digests = {label + ".digest": image for image, label in images.items()},
        optional_digests = {label + ".digest": image for image, label in optional_images.items()},
        **kwargs
    )
