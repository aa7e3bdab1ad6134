"""Which cluster and namespace a plugin talks to, by kubectl's own rules: `kubectl notebook --context X` must never
reach another cluster than `kubectl get pods --context X` would (a typo must not fall back to prod).

The rules are client-go's clientcmd (ClientConfigLoadingRules.Load, DirectClientConfig), which kubectl runs:

- Files: `--kubeconfig` alone, and it must exist; else every file of $KUBECONFIG (os.pathsep-separated, duplicates
  dropped, missing or empty files skipped); else ~/.kube/config.
- Merge: the first file to define a context (cluster, user) wins; current-context is the first file's that sets one.
- Context: `--context`, else current-context; a name that is no context is an error, never a fallback.
- Namespace: `-n`, else the context's namespace, else `default`.

The kubernetes client's loader merges the entries the same way (and resolves relative certificate paths against
each entry's file), but takes the *last* file's current-context and silently keeps a stale one: so the context is
resolved here, and the loader is only handed its name.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes
import yaml

from modelplane.cli.errors import CliError, Exit

DEFAULT_NAMESPACE = "default"


@dataclass(frozen=True)
class Target:
    """The context and namespace a command uses, and how they were chosen (for the messages that depend on it)."""

    context: str
    namespace: str
    namespace_defaulted: bool = False  # neither -n nor the context named one: `default`, by kubectl's last rule
    kubeconfig: str | None = None  # --kubeconfig, as given

    def kubectl_flags(self) -> list[str]:
        """Flags for a kubectl the plugin runs (port-forward) or tells the user to run: the same cluster and namespace,
        the context pinned by name so that a `kubectl config use-context` meanwhile cannot redirect it."""
        explicit = ["--kubeconfig", self.kubeconfig] if self.kubeconfig else []
        return [*explicit, "--context", self.context, "--namespace", self.namespace]


def kubeconfig_paths(explicit: str | None, environ: Mapping[str, str], home: Path) -> list[Path]:
    """The files to read, in precedence order (clientcmd.NewDefaultClientConfigLoadingRules, ExplicitPath)."""
    if explicit:
        return [Path(explicit)]
    listed = environ.get("KUBECONFIG", "")
    if listed:
        return [Path(path) for path in dict.fromkeys(listed.split(os.pathsep)) if path]
    return [home / ".kube" / "config"]


def resolve(configs: Sequence[Mapping[str, Any]], context: str | None, namespace: str | None,
            kubeconfig: str | None = None, where: str = "the kubeconfig") -> Target:
    """The target that `configs` (parsed files, in precedence order) and the flags name, or an error (Exit.NO_CLUSTER)
    that lists the contexts there are."""
    contexts: dict[str, Mapping[str, Any]] = {}
    for config in configs:
        for entry in config.get("contexts") or []:
            if isinstance(entry, dict) and entry.get("name"):
                contexts.setdefault(entry["name"], entry.get("context") or {})
    known = f"known contexts: {', '.join(sorted(contexts))}" if contexts else "it defines no context"
    name = context or next((c["current-context"] for c in configs if c.get("current-context")), "")
    if not name:
        raise CliError(Exit.NO_CLUSTER, f"no current context in {where}: give --context NAME or run "
                                        f"`kubectl config use-context NAME` ({known})")
    if name not in contexts:
        chosen = "--context" if context else "current-context"
        raise CliError(Exit.NO_CLUSTER, f"{chosen} {name!r} is not a context of {where} ({known})")
    chosen_namespace = namespace or contexts[name].get("namespace")
    return Target(name, chosen_namespace or DEFAULT_NAMESPACE, not chosen_namespace, kubeconfig)


def _read(path: Path) -> Mapping[str, Any] | None:
    """A kubeconfig file's content; None for a missing or empty one (which kubectl skips)."""
    try:
        content = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, yaml.YAMLError) as error:
        raise CliError(Exit.NO_CLUSTER, f"kubeconfig {path}: {error}") from error
    if content is not None and not isinstance(content, dict):
        raise CliError(Exit.NO_CLUSTER, f"kubeconfig {path}: not a kubeconfig (expected a mapping)")
    return content


def connect(kubeconfig: str | None, context: str | None,
            namespace: str | None) -> tuple[kubernetes.client.ApiClient, Target]:
    """A client for the target the flags and the kubeconfig files name (no request is made yet)."""
    paths = kubeconfig_paths(kubeconfig, os.environ, Path.home())
    if kubeconfig and not paths[0].exists():
        raise CliError(Exit.NO_CLUSTER, f"--kubeconfig {kubeconfig}: no such file")
    read = [(path, config) for path in paths if (config := _read(path))]
    where = os.pathsep.join(str(path) for path in paths)
    if not read:
        raise CliError(Exit.NO_CLUSTER, f"no kubeconfig at {where} (`gcloud container clusters get-credentials "
                                        "CLUSTER` writes one; --kubeconfig and $KUBECONFIG name others)")
    target = resolve([config for _, config in read], context, namespace, kubeconfig, where)
    try:
        api = kubernetes.config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=os.pathsep.join(str(path) for path, _ in read), context=target.context)
    except (kubernetes.config.ConfigException, OSError) as error:
        raise CliError(Exit.NO_CLUSTER, f"context {target.context!r}: {error}") from error
    return api, target
