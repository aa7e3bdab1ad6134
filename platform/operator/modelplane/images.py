"""Default images for what the platform runs on users' behalf; a stack may pin others (serverImage, ...)."""

SERVER_IMAGE = "vllm/vllm-openai:v0.11.0"  # OpenAI-compatible server; reads the model from /content/model
NOTEBOOK_IMAGE = "quay.io/jupyter/pytorch-notebook:cuda12-2025-10-20"
BUILDER_IMAGE = "moby/buildkit:v0.25.1-rootless"  # rootless, daemonless image builds
OPERATOR_VERSION = "0.1.0"
CLOUD_SDK_IMAGE = "gcr.io/google.com/cloudsdktool/google-cloud-cli:slim"  # registry login, fetching uploads
