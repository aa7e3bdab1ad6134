"""What the plugins' tests share: a model manifest and a build context on disk, a kubeconfig in the environment,
and how a known failure must look."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelplane.cli.command import UNEXPECTED

MODEL: dict[str, Any] = {"apiVersion": "modelplane.dev/v1alpha1", "kind": "Model", "metadata": {"name": "tuned"},
                         "spec": {"params": {"epochs": 1}}}


def context_dir(root: Path, script: str = "print('train')") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "Dockerfile").write_text("FROM python:3.11-slim\nCOPY train.py /\n")
    (root / "train.py").write_text(script)
    (root / ".dockerignore").write_text("*.ckpt\n")
    (root / "big.ckpt").write_text("not sent")
    return root


def model_manifest(tmp_path: Path, **spec: Any) -> Path:
    manifest = tmp_path / "model.yaml"
    manifest.write_text(yaml.safe_dump({**MODEL, "spec": {**MODEL["spec"], **spec}}))
    return manifest


def clean(err: str) -> str:
    """stderr of a known failure: one-line messages, no traceback, not the last resort's."""
    assert "Traceback" not in err and UNEXPECTED not in err, err
    return err


def use_kubeconfig(monkeypatch: pytest.MonkeyPatch, *paths: Path) -> None:
    listed = os.pathsep.join(str(path) for path in paths)
    monkeypatch.setenv("KUBECONFIG", listed)
    monkeypatch.setattr("kubernetes.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION", listed)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
