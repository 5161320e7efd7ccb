"""go_image: a static Go program on :base_static, the chain every Go service's image shares."""

load("//tools/oci:defs.bzl", "layer_tar", "oci_image")
load("//tools/oci:go_static.bzl", "go_static")

def go_image(name, binary, program, exposed_ports, files = {}):
    """The image `name` of a Go program: `<name>_bin` → `<name>_files` → `name`.

    Args:
      name: the image's name (and the prefix of its two intermediate targets).
      binary: the go_binary, rebuilt with cgo off (go_static) so it runs on an empty base.
      program: its file name under /usr/local/bin, and the entrypoint.
      exposed_ports: the image's exposed ports, as "8080/tcp".
      files: more files for the same layer, label → path in the image.
    """
    path = "/usr/local/bin/" + program
    go_static(
        name = name + "_bin",
        binary = binary,
    )
    layer_tar(
        name = name + "_files",
        files = dict({":%s_bin" % name: path}, **files),
    )
    oci_image(
        name = name,
        base = ":base_static",
        entrypoint = [path],
        exposed_ports = exposed_ports,
        tars = [":%s_files" % name],
    )
