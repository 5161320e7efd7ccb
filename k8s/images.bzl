"""The images Tally deploys: bare name (what the manifests say, and the repository name under the
registry prefix) -> oci_image target. Shared by the render (//k8s:manifests) and //k8s:push, so
the manifests pin exactly what is pushed."""

IMAGES = {
    "api": "//k8s/images:api",
    "audit": "//k8s/images:audit",
    "consumer": "//k8s/images:consumer",
    "grpc-front": "//k8s/images:grpc_front",
    "grpc-producer": "//k8s/images:grpc_producer",
    "mongodb-setup": "//k8s/images:mongodb_setup",
    "wasm-module": "//k8s/images:wasm_module",
    "wasm-producer": "//k8s/images:wasm_producer",
    "web": "//k8s/images:web",
}

# Strimzi's operator and Kafka images built from Strimzi's source (k8s/images/strimzi): pushed by
# //k8s:push with ours, and run by the Strimzi operator //k8s:apply installs when the settings say
# images.strimzi: ours (docs/kubernetes.md). No manifest of ours names them.
STRIMZI_IMAGES = {
    "strimzi-kafka": "//k8s/images/strimzi:kafka",
    "strimzi-operator": "//k8s/images/strimzi:operator",
}

# Servers built here in place of upstream images, run when the settings choose them: Redis from
# Debian's package (images.redis: ours) and the MongoDB-wire server (mongodb.server: ferretdb,
# test settings only; docs/kubernetes.md).
SERVER_IMAGES = {
    "ferretdb": "//k8s/images:ferretdb",
    "redis": "//k8s/images/redis:redis",
}

# The images built here that run only when the settings choose them: in the render's refs (and so
# pushed by //k8s:apply) exactly then.
OPTIONAL_IMAGES = STRIMZI_IMAGES | SERVER_IMAGES

# Everything //k8s:push pushes (and the image tests check): ours, Strimzi's and the servers'.
PUSHED_IMAGES = IMAGES | OPTIONAL_IMAGES
