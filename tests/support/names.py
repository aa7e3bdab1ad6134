"""Kubernetes' name validators, ported to check what the operator builds before a real API server does.

From kubernetes/apimachinery at eed236ceee2c (master, July 2026): `pkg/util/validation/validation.go`
(IsDNS1123Label, IsDNS1123Subdomain, IsDNS1035Label, IsValidPortName, IsEnvVarName, IsConfigMapKey) and
`pkg/api/validate/content/kube.go` (IsLabelKey a.k.a. IsQualifiedName, IsLabelValue). Which rule applies to which
name is kubernetes/kubernetes `pkg/apis/core/validation` (Service names are DNS-1035 labels; ConfigMap, Secret,
Job, Deployment and StatefulSet names DNS-1123 subdomains; container and volume names DNS-1123 labels; port names
IANA_SVC_NAME) and `pkg/apis/batch/validation` (a Job's name is also the pod label `job-name`, so a label value).
Each function returns the problems, like upstream (empty: valid). The `hasChDirPrefix` check of env names and
ConfigMap keys ('.' or '..' prefixes) is ported as "must not be '.' or '..' or start with '..'".
"""

from __future__ import annotations

import re

DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS1123_SUBDOMAIN = re.compile(rf"{DNS1123_LABEL.pattern}(\.{DNS1123_LABEL.pattern})*")
DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
LABEL_KEY_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
ENV_VAR_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
CONFIG_MAP_KEY = re.compile(r"[-._a-zA-Z0-9]+")


def _check(value: str, pattern: re.Pattern[str], max_length: int, what: str) -> list[str]:
    problems = [f"{what}: must be no more than {max_length} characters"] if len(value) > max_length else []
    if not pattern.fullmatch(value):
        problems.append(f"{what}: must match {pattern.pattern}")
    return problems


def dns1123_label(value: str) -> list[str]:
    return _check(value, DNS1123_LABEL, 63, "DNS-1123 label")


def dns1123_subdomain(value: str) -> list[str]:
    return _check(value, DNS1123_SUBDOMAIN, 253, "DNS-1123 subdomain")


def dns1035_label(value: str) -> list[str]:
    return _check(value, DNS1035_LABEL, 63, "DNS-1035 label")


def label_value(value: str) -> list[str]:
    return [] if value == "" else _check(value, LABEL_KEY_NAME, 63, "label value")


def label_key(value: str) -> list[str]:
    """IsQualifiedName: an optional DNS-1123 subdomain prefix and '/', then a name of at most 63 characters."""
    prefix, slash, name = value.rpartition("/")
    if value.count("/") > 1:
        return ["label key: at most one '/'"]
    problems = dns1123_subdomain(prefix) if slash else []
    return problems + _check(name, LABEL_KEY_NAME, 63, "label key name")


def port_name(value: str) -> list[str]:
    """IsValidPortName (IANA_SVC_NAME): 15 characters of [-a-z0-9], a letter, no '--', no '-' at either end."""
    problems = ["port name: must be no more than 15 characters"] if len(value) > 15 else []
    if not re.fullmatch(r"[-a-z0-9]+", value) or not re.search(r"[a-z]", value):
        problems.append("port name: only a-z, 0-9 and '-', with at least one letter")
    if "--" in value or value.startswith("-") or value.endswith("-"):
        problems.append("port name: no '--' and no '-' at either end")
    return problems


def _no_chdir_prefix(value: str, what: str) -> list[str]:
    return [f"{what}: must not be '.' or '..' or start with '..'"] if value in (".", "..") or value.startswith(
        "..") else []


def env_var_name(value: str) -> list[str]:
    problems = [] if ENV_VAR_NAME.fullmatch(value) else [f"env name: must match {ENV_VAR_NAME.pattern}"]
    return problems + _no_chdir_prefix(value, "env name")


def config_map_key(value: str) -> list[str]:
    return _check(value, CONFIG_MAP_KEY, 253, "ConfigMap key") + _no_chdir_prefix(value, "ConfigMap key")
