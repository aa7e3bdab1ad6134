"""Reference server of the retraining loop: answers churn predictions with the weights the trainer wrote.

The serving contract (examples/loop/README.md): the weights of the version being served are mounted read-only at
$MODELPLANE_CONTENT/model (default /content/model), and the server listens on port 8080 of every address, or, when
the ModelServer records its traffic, on $MODELPLANE_SERVER_HOST:$MODELPLANE_SERVER_PORT (127.0.0.1:8081), behind
the capture proxy.

    GET  /health        200 once the weights are loaded (the readiness probe)
    POST /v1/predict    {"instances": [{"tenure_years": 2.5, "monthly_fee": 0.7, ...}, ...]}
                        -> {"predictions": [{"churn": 0.31}, ...], "modelVersion": "3"}

A missing feature is refused (400) rather than imputed: a silent default would hide exactly the drift the monitor
is there to see. The Python standard library only, like the loader and trainer.
"""

from __future__ import annotations

import json
import math
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class Weights:
    def __init__(self, found: dict[str, Any]) -> None:
        self.features: list[str] = list(found["features"])
        self.weights = [float(found["weights"][f]) for f in self.features]
        self.mean = [float(found["mean"][f]) for f in self.features]
        self.scale = [float(found["scale"][f]) for f in self.features]
        self.bias = float(found["bias"])

    def churn(self, instance: dict[str, Any]) -> float:
        missing = [f for f in self.features if not isinstance(instance.get(f), int | float)]
        if missing:
            raise ValueError(f"instance lacks numeric {', '.join(missing)}")
        z = self.bias + sum(w * (float(instance[f]) - m) / s
                            for f, w, m, s in zip(self.features, self.weights, self.mean, self.scale, strict=True))
        return 1 / (1 + math.exp(-z)) if z >= 0 else math.exp(z) / (1 + math.exp(z))


def load(root: Path) -> Weights:
    return Weights(json.loads((root / "model" / "weights.json").read_text()))


def handler(weights: Weights, version: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/health":
                self.reply(200, {"status": "ok"})
            else:
                self.reply(404, {"error": f"no {self.path}"})

        def do_POST(self) -> None:
            if self.path != "/v1/predict":
                self.reply(404, {"error": f"no {self.path}"})
                return
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                instances = body["instances"]
                predictions = [{"churn": round(weights.churn(i), 6)} for i in instances]
            except (ValueError, KeyError, TypeError) as error:
                self.reply(400, {"error": str(error)})
                return
            self.reply(200, {"predictions": predictions, "modelVersion": version})

    return Handler


def serve(root: Path, host: str, port: int, version: str) -> ThreadingHTTPServer:
    return ThreadingHTTPServer((host, port), handler(load(root), version))


def main() -> int:
    root = Path(os.environ.get("MODELPLANE_CONTENT") or "/content")
    try:
        server = serve(root, os.environ.get("MODELPLANE_SERVER_HOST") or "0.0.0.0",
                       int(os.environ.get("MODELPLANE_SERVER_PORT") or 8080),
                       os.environ.get("MODELPLANE_MODEL_VERSION", ""))
    except (OSError, ValueError, KeyError) as error:
        print(f"cannot load the model from {root / 'model'}: {error}", file=sys.stderr)
        return 2
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
