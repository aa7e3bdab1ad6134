"""Default images for what the platform runs on users' behalf; a stack may pin others (serverImage, ...).

Every image is pinned by digest: a tag can be moved to other code at any time by whoever controls it, a digest
cannot. The tag stays beside the digest for the reader (the runtime pulls by digest and ignores the tag). The digests
are the multi-architecture index digests that public projects pin for these tags; check one with
`crane digest <image:tag>` before moving to a new tag. Names are fully qualified (`docker.io/...`) so that they
read the same to the kubelet and to Binary Authorization's allowlist (infra/gke/binary_authorization.py).
"""

SERVER_IMAGE = ("docker.io/vllm/vllm-openai:v0.11.0"  # OpenAI-compatible server; reads the model from /content/model
                "@sha256:014a95f21c9edf6abe0aea6b07353f96baa4ec291c427bb1176dc7c93a85845c")
NOTEBOOK_IMAGE = ("quay.io/jupyter/pytorch-notebook:cuda12-2026-08-03"
                  "@sha256:69c72823a4e0dbee17114bbe44d0377bc9a39504a76f6314995f7d5bfaa98d60")
BUILDER_IMAGE = ("docker.io/moby/buildkit:v0.33.0-rootless"  # rootless, daemonless image builds
                 "@sha256:80b15f0735e87bab7bf59ec4d695dfb4a7cfb25521cf56dc75d6f256285b63ef")
CLOUD_SDK_IMAGE = ("gcr.io/google.com/cloudsdktool/google-cloud-cli:578.0.0-stable"  # registry login, fetching uploads
                   "@sha256:39f4c48c083fb1d8d182eedc7de97545980afb646b1afdfec61a3f560969bc96")
OPERATOR_VERSION = "0.1.0"
OPERATOR_IMAGE_NAME = "modelplane-operator"  # in the stack's platform repository; resolved to its digest at `up`
DIGEST_PINNED = r"@sha256:[a-f0-9]{64}$"
