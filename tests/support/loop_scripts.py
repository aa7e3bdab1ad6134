"""The loop's example programs, run as their images would run them: a fresh process over a content directory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOOP = Path(__file__).resolve().parents[2] / "examples" / "loop"
DATA = LOOP / "data"
LOADER = LOOP / "loader" / "main.py"
TRAINER = LOOP / "trainer" / "main.py"


@dataclass(frozen=True)
class Run:
    exit_code: int
    output: str  # stdout and stderr
    artifacts: Path

    def json(self, name: str) -> Any:
        return json.loads((self.artifacts / name).read_text())


def run(script: Path, content: Path, params: dict[str, Any] | None = None, **env: str) -> Run:
    """Run `script` with MODELPLANE_CONTENT=content (params.json written first, if given) and only `env` besides."""
    content.mkdir(parents=True, exist_ok=True)
    if params is not None:
        (content / "params.json").write_text(json.dumps(params))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=False,
                          env={"PATH": os.environ.get("PATH", ""), "MODELPLANE_CONTENT": str(content), **env})
    return Run(done.returncode, done.stdout + done.stderr, content / "artifacts")


def train(content: Path, version: str, params: dict[str, Any] | None = None, model: Path | None = None,
          **env: str) -> Run:
    """Train on feed version `version` (its train.csv and the fixed eval.csv), warm from `model` if given."""
    (content / "data").mkdir(parents=True)
    shutil.copy(DATA / version / "train.csv", content / "data")
    shutil.copy(DATA / "eval.csv", content / "data")
    if model is not None:
        shutil.copytree(model, content / "model")
    return run(TRAINER, content, params, **env)
