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
