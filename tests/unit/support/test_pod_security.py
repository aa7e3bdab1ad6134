"""The Pod Security Standards port refuses what upstream refuses, check by check (ids as in policy/check_*.go),
and admits what upstream admits; cases follow the upstream *_test.go files."""

import copy
from typing import Any

import pytest

from tests.support.pod_security import Level, checks_of, evaluate

# Passes restricted: the minimal pod upstream's fixtures start from.
RESTRICTED_POD: dict[str, Any] = {
    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    "initContainers": [{"name": "init", "image": "i",
                        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}],
    "containers": [{"name": "main", "image": "i",
                    "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}],
    "volumes": [{"name": "scratch", "emptyDir": {}}],
}


def pod(**changes: Any) -> dict[str, Any]:
    """RESTRICTED_POD with pod-level fields set (None removes one)."""
    result = copy.deepcopy(RESTRICTED_POD)
    for key, value in changes.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    return result


def with_container(container: dict[str, Any], **pod_changes: Any) -> dict[str, Any]:
    """RESTRICTED_POD whose main container's securityContext (and other fields) are merged with `container`."""
    result = pod(**pod_changes)
    main = result["containers"][0]
    main["securityContext"] = {**main["securityContext"], **container.pop("securityContext", {})}
    main.update(container)
    return result


def refused_by(level: Level, spec: dict[str, Any], meta: dict[str, Any] | None = None) -> set[str]:
    return {f.check for f in evaluate(level, meta or {}, spec)}


def test_the_starting_pod_passes_both_levels() -> None:
    assert refused_by("restricted", pod()) == set() == refused_by("baseline", pod())


def test_restricted_runs_baselines_checks_except_those_it_overrides() -> None:
    baseline = {c.id for c in checks_of("baseline")}
    restricted = {c.id for c in checks_of("restricted")}
    assert baseline - restricted == {"hostPathVolumes", "capabilities_baseline", "seccompProfile_baseline",
                                     "procMount"}
    assert len(baseline) == 12 and len(restricted) == 15


# (check id, what it refuses) -- each refused at baseline, hence at restricted too.
BASELINE_REFUSALS = [
    ("hostNamespaces", pod(hostNetwork=True)),
    ("hostNamespaces", pod(hostPID=True)),
    ("hostNamespaces", pod(hostIPC=True)),
    ("privileged", with_container({"securityContext": {"privileged": True}})),
    ("capabilities_baseline", with_container({"securityContext": {"capabilities": {"add": ["NET_RAW"]}}})),
    ("capabilities_baseline", with_container({"securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}})),
    ("hostPorts", with_container({"ports": [{"containerPort": 80, "hostPort": 8080}]})),
    ("appArmorProfile", pod(securityContext={**RESTRICTED_POD["securityContext"],
                                             "appArmorProfile": {"type": "Unconfined"}})),
    ("appArmorProfile", with_container({"securityContext": {"appArmorProfile": {"type": "Unconfined"}}})),
    ("seLinuxOptions", with_container({"securityContext": {"seLinuxOptions": {"type": "spc_t"}}})),
    ("seLinuxOptions", with_container({"securityContext": {"seLinuxOptions": {"user": "system_u"}}})),
    ("seLinuxOptions", pod(securityContext={**RESTRICTED_POD["securityContext"], "seLinuxOptions": {"role": "r"}})),
    ("sysctls", pod(securityContext={**RESTRICTED_POD["securityContext"],
                                     "sysctls": [{"name": "kernel.msgmax", "value": "1"}]})),
    ("windowsHostProcess", with_container({"securityContext": {"windowsOptions": {"hostProcess": True}}})),
    ("windowsHostProcess", pod(securityContext={**RESTRICTED_POD["securityContext"],
                                                "windowsOptions": {"hostProcess": True}})),
    ("hostProbesAndHostLifecycle", with_container({"readinessProbe": {"httpGet": {"port": 80, "host": "10.0.0.1"}}})),
    ("hostProbesAndHostLifecycle", with_container({"livenessProbe": {"tcpSocket": {"port": 80, "host": "node"}}})),
    ("hostProbesAndHostLifecycle", with_container({"lifecycle": {"preStop": {"httpGet": {"port": 1, "host": "h"}}}})),
]


@pytest.mark.parametrize(("check", "spec"), BASELINE_REFUSALS, ids=[c for c, _ in BASELINE_REFUSALS])
def test_baseline_refuses_what_upstream_refuses(check: str, spec: dict[str, Any]) -> None:
    assert refused_by("baseline", spec) == {check}
    assert check in refused_by("restricted", spec) or check.endswith("_baseline")


# Checks that restricted replaces: baseline's version and restricted's version both refuse.
@pytest.mark.parametrize(("baseline_check", "restricted_check", "spec"), [
    ("hostPathVolumes", "restrictedVolumes", pod(volumes=[{"name": "h", "hostPath": {"path": "/"}}])),
    ("seccompProfile_baseline", "seccompProfile_restricted",
     pod(securityContext={"runAsNonRoot": True, "seccompProfile": {"type": "Unconfined"}})),
    ("seccompProfile_baseline", "seccompProfile_restricted",
     with_container({"securityContext": {"seccompProfile": {"type": "Unconfined"}}})),
    ("procMount", "procMount_restricted", with_container({"securityContext": {"procMount": "Unmasked"}})),
], ids=["hostPath", "seccomp-pod", "seccomp-container", "procMount"])
def test_overridden_checks_refuse_at_both_levels(baseline_check: str, restricted_check: str,
                                                 spec: dict[str, Any]) -> None:
    assert refused_by("baseline", spec) == {baseline_check}
    assert refused_by("restricted", spec) == {restricted_check}


def test_apparmor_annotations_other_than_runtime_default_or_localhost() -> None:
    annotation = "container.apparmor.security.beta.kubernetes.io/main"
    assert refused_by("baseline", pod(), {"annotations": {annotation: "unconfined"}}) == {"appArmorProfile"}
    for allowed in ("runtime/default", "localhost/custom", ""):
        assert refused_by("baseline", pod(), {"annotations": {annotation: allowed}}) == set()
    (forbidden,) = evaluate("baseline", {"annotations": {annotation: "unconfined"}}, pod())
    assert forbidden.reason == "forbidden AppArmor profile" and "annotations must not" in forbidden.detail


def test_baseline_admits_allowed_values() -> None:
    allowed = [
        with_container({"securityContext": {"capabilities": {"add": ["CHOWN", "SETUID", "SETGID", "SYS_CHROOT"]}}}),
        with_container({"securityContext": {"seLinuxOptions": {"type": "container_engine_t", "level": "s0:c1"}}}),
        with_container({"securityContext": {"appArmorProfile": {"type": "Localhost", "localhostProfile": "p"}}}),
        with_container({"securityContext": {"procMount": "Default", "privileged": False}}),
        with_container({"securityContext": {"procMount": "Unmasked"}}, hostUsers=False),  # 1.35: user namespace
        with_container({"ports": [{"containerPort": 80, "hostPort": 0}],
                        "readinessProbe": {"httpGet": {"port": 80, "host": ""}}}),
        pod(securityContext={**RESTRICTED_POD["securityContext"],
                             "sysctls": [{"name": "net.ipv4.tcp_notsent_lowat", "value": "1"}]}),  # 1.37
        pod(securityContext={"runAsUser": 0}),  # root is baseline's business only under restricted
        with_container({"securityContext": {"allowPrivilegeEscalation": True, "capabilities": None}}),
    ]
    for spec in allowed:
        assert refused_by("baseline", spec) == set(), spec


RESTRICTED_REFUSALS = [
    ("restrictedVolumes", pod(volumes=[{"name": "nfs", "nfs": {"server": "s", "path": "/"}}])),
    ("restrictedVolumes", pod(volumes=[{"name": "git", "gitRepo": {"repository": "r"}}])),
    ("allowPrivilegeEscalation", with_container({"securityContext": {"allowPrivilegeEscalation": True}})),
    ("allowPrivilegeEscalation", with_container({"securityContext": {"allowPrivilegeEscalation": None}})),
    ("runAsNonRoot", pod(securityContext={"seccompProfile": {"type": "RuntimeDefault"}})),
    ("runAsNonRoot", with_container({"securityContext": {"runAsNonRoot": False}})),
    ("runAsUser", pod(securityContext={**RESTRICTED_POD["securityContext"], "runAsUser": 0})),
    ("runAsUser", with_container({"securityContext": {"runAsUser": 0}})),
    ("seccompProfile_restricted", pod(securityContext={"runAsNonRoot": True})),
    ("capabilities_restricted", with_container({"securityContext": {"capabilities": {"drop": ["NET_RAW"]}}})),
    ("capabilities_restricted", with_container({"securityContext": {"capabilities": {"drop": ["ALL"],
                                                                                      "add": ["CHOWN"]}}})),
    ("capabilities_restricted", with_container({"securityContext": {"capabilities": None}})),
]


@pytest.mark.parametrize(("check", "spec"), RESTRICTED_REFUSALS, ids=[c for c, _ in RESTRICTED_REFUSALS])
def test_restricted_refuses_what_upstream_refuses(check: str, spec: dict[str, Any]) -> None:
    assert refused_by("restricted", spec) == {check}
    assert refused_by("baseline", spec) == set()


def test_restricted_admits_allowed_values() -> None:
    allowed = [
        pod(volumes=[{"name": v, source: {}} for v, source in (
            ("a", "configMap"), ("b", "secret"), ("c", "projected"), ("d", "downwardAPI"), ("e", "csi"),
            ("f", "persistentVolumeClaim"), ("g", "ephemeral"), ("h", "image"))]),
        with_container({"securityContext": {"capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}}),
        with_container({"securityContext": {"seccompProfile": {"type": "Localhost", "localhostProfile": "p"}}},
                       securityContext={"runAsNonRoot": True}, initContainers=[]),
        with_container({"securityContext": {"runAsNonRoot": True}},
                       securityContext={"seccompProfile": {"type": "RuntimeDefault"}},
                       initContainers=[]),
        with_container({"securityContext": {"runAsUser": 0, "runAsNonRoot": False}}, hostUsers=False),  # 1.35
        pod(os={"name": "windows"}, securityContext={"runAsNonRoot": True},
            containers=[{"name": "w", "image": "i"}], initContainers=[]),  # 1.25: not Linux fields
    ]
    for spec in allowed:
        assert refused_by("restricted", spec) == set(), spec


def test_ephemeral_containers_are_checked_too() -> None:
    spec = pod(ephemeralContainers=[{"name": "debug", "image": "i", "securityContext": {"privileged": True}}])
    (forbidden,) = evaluate("baseline", {}, spec)
    assert forbidden.check == "privileged" and '"debug"' in forbidden.detail


def test_details_name_the_culprits() -> None:
    spec = with_container({"securityContext": {"capabilities": {"add": ["SYS_ADMIN", "NET_ADMIN"]}}})
    (forbidden,) = evaluate("baseline", {}, spec)
    assert forbidden.reason == "non-default capabilities"
    assert forbidden.detail == ('containers "main" must not include "NET_ADMIN", "SYS_ADMIN" in '
                                'securityContext.capabilities.add')
