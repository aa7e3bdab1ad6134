"""The Pod Security Standards as the API server's admission plugin evaluates them, so tests can tell whether a
namespace that enforces a level would admit the pods the operator asks for.

A port of k8s.io/pod-security-admission, package `policy` (kubernetes/pod-security-admission at commit 8f84a87c,
July 2026; module go 1.26), read file by file: check_hostNamespaces.go, check_privileged.go,
check_capabilities_baseline.go, check_hostPathVolumes.go, check_hostPorts.go, check_appArmorProfile.go,
check_seLinuxOptions.go, check_procMount_baseline.go, check_seccompProfile_baseline.go, check_sysctls.go,
check_windowsHostProcess.go, check_hostProbesAndhostLifecycle.go (baseline) and check_restrictedVolumes.go,
check_allowPrivilegeEscalation.go, check_runAsNonRoot.go, check_runAsUser.go, check_seccompProfile_restricted.go,
check_capabilities_restricted.go, check_procMount_restricted.go (restricted), with visitor.go (init, regular and
ephemeral containers), helpers.go (the user-namespace relaxation) and registry.go (a restricted check replaces
the baseline checks it overrides; `restricted` is every baseline check plus its own).

How faithful: each check is the newest versioned function of its upstream file (policy version 1.37, i.e.
`enforce-version: latest` on a current API server), over the pod's JSON as the API server receives it, with
upstream's check ids and ForbiddenReason texts; details say the same thing, not always in the same words.
Not ported: the older versioned functions (so an API server older than 1.37 may be stricter: fewer allowed
sysctls before 1.37, no `hostUsers: false` relaxation of procMount/runAsNonRoot/runAsUser before 1.35, no
probe-host check before 1.34, and the seccomp annotations before 1.19); exemptions (users, namespaces, runtime
classes); the `warn`/`audit` modes; and the admission plumbing (which objects carry a pod template, and that the
controllers' pods inherit it). Field names follow the Kubernetes JSON API (camelCase), absent means Go's nil.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Level = Literal["baseline", "restricted"]
Pod = Mapping[str, Any]  # a pod spec
Meta = Mapping[str, Any]  # the pod's metadata


@dataclass(frozen=True)
class Forbidden:
    check: str  # upstream's CheckID
    reason: str  # upstream's ForbiddenReason
    detail: str


@dataclass(frozen=True)
class Check:
    id: str
    level: Level
    evaluate: Callable[[Meta, Pod], tuple[str, str] | None]  # (reason, detail) when forbidden
    overrides: tuple[str, ...] = ()


# --- helpers.go, visitor.go --------------------------------------------------------------------------------------

def _containers(pod: Pod) -> Iterator[Mapping[str, Any]]:
    yield from pod.get("initContainers") or []
    yield from pod.get("containers") or []
    yield from pod.get("ephemeralContainers") or []


def _context(container: Mapping[str, Any]) -> Mapping[str, Any]:
    return container.get("securityContext") or {}


def _pod_context(pod: Pod) -> Mapping[str, Any]:
    return pod.get("securityContext") or {}


def _quote(items: list[str] | set[str]) -> str:
    return ", ".join(f'"{item}"' for item in (sorted(items) if isinstance(items, set) else items))


def _user_namespaced(pod: Pod) -> bool:
    """relaxPolicyForUserNamespacePod: `hostUsers: false` puts the pod in a user namespace."""
    return pod.get("hostUsers") is False


def _windows(pod: Pod) -> bool:
    return (pod.get("os") or {}).get("name") == "windows"


def _setters(pod_bad: bool, containers: list[str]) -> str:
    """"pod and containers "a", "b"": who set a forbidden value."""
    return " and ".join((["pod"] if pod_bad else []) + ([f"containers {_quote(containers)}"] if containers else []))


# --- baseline ----------------------------------------------------------------------------------------------------

def host_namespaces(meta: Meta, pod: Pod) -> tuple[str, str] | None:
    shared = [f"{field}=true" for field in ("hostNetwork", "hostPID", "hostIPC") if pod.get(field)]
    return ("host namespaces", ", ".join(shared)) if shared else None


def privileged(meta: Meta, pod: Pod) -> tuple[str, str] | None:
    bad = [c["name"] for c in _containers(pod) if _context(c).get("privileged") is True]
    return ("privileged", f"containers {_quote(bad)} must not set securityContext.privileged=true") if bad else None


BASELINE_CAPABILITIES = frozenset({"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
                                   "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"})


def capabilities_baseline(meta: Meta, pod: Pod) -> tuple[str, str] | None:
    bad, added = [], set()
    for c in _containers(pod):
        extra = {cap for cap in (_context(c).get("capabilities") or {}).get("add") or []
                 if cap not in BASELINE_CAPABILITIES}
        if extra:
            bad.append(c["name"])
            added |= extra
    return ("non-default capabilities", f"containers {_quote(bad)} must not include {_quote(added)} in "
            "securityContext.capabilities.add") if bad else None


def host_path_volumes(meta: Meta, pod: Pod) -> tuple[str, str] | None:
    bad = [v["name"] for v in pod.get("volumes") or [] if v.get("hostPath") is not None]
    return ("hostPath volumes", f"volumes {_quote(bad)}") if bad else None


def host_ports(meta: Meta, pod: Pod) -> tuple[str, str] | None:
    bad, ports = [], set()
    for c in _containers(pod):
        used = {str(p["hostPort"]) for p in c.get("ports") or [] if p.get("hostPort")}
        if used:
            bad.append(c["name"])
            ports |= used
    return ("hostPort", f"containers {_quote(bad)} use hostPorts {', '.join(sorted(ports))}") if bad else None


APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/"


def app_armor_profile(meta: Meta, pod: Pod) -> tuple[str, str] | None:
    allowed = ("RuntimeDefault", "Localhost")
    values: set[str] = set()
    profile = _pod_context(pod).get("appArmorProfile")
    pod_bad = profile is not None and profile.get("type") not in allowed
    if pod_bad:
        values.add(str(profile.get("type")))  # type: ignore[union-attr]
    bad = []
    for c in _containers(pod):
        profile = _context(c).get("appArmorProfile")
        if profile is not None and profile.get("type") not in allowed:
            bad.append(c["name"])
            values.add(str(profile.get("type")))
    annotations = sorted(f'{key}="{value}"' for key, value in (meta.get("annotations") or {}).items()
                         if key.startswith(APPARMOR_ANNOTATION_PREFIX)
                         and not (value in ("", "runtime/default") or value.startswith("localhost/")))
    setters = _setters(pod_bad, bad) + (" and annotations" if annotations else "")
    if not setters:
        return None
    forbidden = [*sorted(values), *annotations]
    reason = "forbidden AppArmor profile" + ("s" if len(forbidden) > 1 else "")
    return (reason, f"{setters.removeprefix(' and ')} must not set AppArmor profile type to {_quote(forbidden)}")


SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"})


def se_linux_options(meta: Meta, pod: Pod) -> tuple[str, str] | None:
    problems: set[str] = set()

    def valid(options: Mapping[str, Any] | None) -> bool:
        if options is None:
            return True
        found = set()
        if options.get("type", "") not in SELINUX_TYPES:
            found.add(f"type {options.get('type')!r}")
        if options.get("user"):
            found.add("user may not be set")
        if options.get("role"):
            found.add("role may not be set")
        problems.update(found)
        return not found

    pod_bad = not valid(_pod_context(pod).get("seLinuxOptions"))
    bad = [c["name"] for c in _containers(pod) if not valid(_context(c).get("seLinuxOptions"))]
    if not (pod_bad or bad):
        return None
    return ("seLinuxOptions", f"{_setters(pod_bad, bad)} set forbidden securityContext.seLinuxOptions: "
            f"{'; '.join(sorted(problems))}")


def proc_mount_unconditional(meta: Meta, pod: Pod) -> tuple[str, str] | None:
    """procMount_1_0: only the Default /proc masks."""
    bad, kinds = [], set()
    for c in _containers(pod):
        mount = _context(c).get("procMount")
        if mount is not None and mount != "Default":
            bad.append(c["name"])
            kinds.add(str(mount))
    return ("procMount", f"containers {_quote(bad)} must not set securityContext.procMount to "
            f"{_quote(kinds)}") if bad else None


def proc_mount_baseline(meta: Meta, pod: Pod) -> tuple[str, str] | None:
    """procMount1_35baseline: any procMount inside a user namespace."""
    return None if _user_namespaced(pod) else proc_mount_unconditional(meta, pod)


SECCOMP_TYPES = ("RuntimeDefault", "Localhost")


def _seccomp(pod: Pod, required: bool) -> tuple[str, str] | None:
    """seccompProfileBaseline_1_19 (`required` False) and seccompProfileRestricted_1_19 (True)."""
    values: set[str] = set()
    profile = _pod_context(pod).get("seccompProfile")
    pod_bad = profile is not None and profile.get("type") not in SECCOMP_TYPES
    if pod_bad:
        values.add(str(profile.get("type")))  # type: ignore[union-attr]
    pod_set = profile is not None and not pod_bad
    bad, unset = [], []
    for c in _containers(pod):
        profile = _context(c).get("seccompProfile")
        if profile is not None:
            if profile.get("type") not in SECCOMP_TYPES:
                bad.append(c["name"])
                values.add(str(profile.get("type")))
        elif not pod_set:
            unset.append(c["name"])
    if pod_bad or bad:
        return ("seccompProfile", f"{_setters(pod_bad, bad)} must not set securityContext.seccompProfile.type to "
                f"{_quote(values)}")
    if required and unset:
        return ("seccompProfile", f'pod or containers {_quote(unset)} must set securityContext.seccompProfile.type '
                'to "RuntimeDefault" or "Localhost"')
    return None


def seccomp_profile_baseline(meta: Meta, pod: Pod) -> tuple[str, str] | None:
    return _seccomp(pod, required=False)


SAFE_SYSCTLS = frozenset({
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",  # 1.0
    "net.ipv4.ip_local_reserved_ports",  # 1.27
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",  # 1.29
    "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem",  # 1.32
    "net.ipv4.tcp_slow_start_after_idle", "net.ipv4.tcp_notsent_lowat",  # 1.37
})


def sysctls(meta: Meta, pod: Pod) -> tuple[str, str] | None:
    bad = [s["name"] for s in _pod_context(pod).get("sysctls") or [] if s["name"] not in SAFE_SYSCTLS]
    return ("forbidden sysctls", ", ".join(bad)) if bad else None


def windows_host_process(meta: Meta, pod: Pod) -> tuple[str, str] | None:
    def host_process(context: Mapping[str, Any]) -> bool:
        return (context.get("windowsOptions") or {}).get("hostProcess") is True

    pod_bad = host_process(_pod_context(pod))
    bad = [c["name"] for c in _containers(pod) if host_process(_context(c))]
    return ("hostProcess", f"{_setters(pod_bad, bad)} must not set securityContext.windowsOptions.hostProcess=true"
            ) if pod_bad or bad else None


def host_probes_and_host_lifecycle(meta: Meta, pod: Pod) -> tuple[str, str] | None:
    bad, hosts = [], set()
    for c in _containers(pod):
        lifecycle = c.get("lifecycle") or {}
        handlers = [c.get(p) for p in ("livenessProbe", "readinessProbe", "startupProbe")]
        handlers += [lifecycle.get(h) for h in ("postStart", "preStop")]
        found = {str((handler.get(action) or {}).get("host")) for handler in handlers if handler
                 for action in ("httpGet", "tcpSocket") if (handler.get(action) or {}).get("host")}
        if found:
            bad.append(c["name"])
            hosts |= found
    return ("probe or lifecycle host", f"containers {_quote(bad)} use probe or lifecycle hosts {_quote(hosts)}"
            ) if bad else None


# --- restricted --------------------------------------------------------------------------------------------------

RESTRICTED_VOLUME_SOURCES = frozenset({"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "image",
                                       "persistentVolumeClaim", "projected", "secret"})


def restricted_volumes(meta: Meta, pod: Pod) -> tuple[str, str] | None:
    bad, kinds = [], set()
    for volume in pod.get("volumes") or []:
        sources = {key for key, value in volume.items() if key != "name" and value is not None}
        if not sources & RESTRICTED_VOLUME_SOURCES:
            bad.append(volume["name"])
            kinds |= sources or {"unknown"}
    return ("restricted volume types", f"volumes {_quote(bad)} use restricted volume types {_quote(kinds)}"
            ) if bad else None


def allow_privilege_escalation(meta: Meta, pod: Pod) -> tuple[str, str] | None:
    if _windows(pod):
        return None
    bad = [c["name"] for c in _containers(pod) if _context(c).get("allowPrivilegeEscalation") is not False]
    return ("allowPrivilegeEscalation != false",
            f"containers {_quote(bad)} must set securityContext.allowPrivilegeEscalation=false") if bad else None


def run_as_non_root(meta: Meta, pod: Pod) -> tuple[str, str] | None:
    if _user_namespaced(pod):
        return None
    pod_value = _pod_context(pod).get("runAsNonRoot")
    explicit = [c["name"] for c in _containers(pod) if _context(c).get("runAsNonRoot") is False]
    implicit = [c["name"] for c in _containers(pod)
                if _context(c).get("runAsNonRoot") is None and pod_value is not True]
    if pod_value is False or explicit:
        return ("runAsNonRoot != true",
                f"{_setters(pod_value is False, explicit)} must not set securityContext.runAsNonRoot=false")
    if implicit:
        return ("runAsNonRoot != true",
                f"pod or containers {_quote(implicit)} must set securityContext.runAsNonRoot=true")
    return None


def run_as_user(meta: Meta, pod: Pod) -> tuple[str, str] | None:
    if _user_namespaced(pod):
        return None
    pod_bad = _pod_context(pod).get("runAsUser") == 0
    bad = [c["name"] for c in _containers(pod) if _context(c).get("runAsUser") == 0]
    return ("runAsUser=0", f"{_setters(pod_bad, bad)} must not set runAsUser=0") if pod_bad or bad else None


def seccomp_profile_restricted(meta: Meta, pod: Pod) -> tuple[str, str] | None:
    return None if _windows(pod) else _seccomp(pod, required=True)


def capabilities_restricted(meta: Meta, pod: Pod) -> tuple[str, str] | None:
    if _windows(pod):
        return None
    no_drop, adding, added = [], [], set()
    for c in _containers(pod):
        capabilities = _context(c).get("capabilities")
        if capabilities is None:
            no_drop.append(c["name"])
            continue
        if "ALL" not in (capabilities.get("drop") or []):
            no_drop.append(c["name"])
        extra = {cap for cap in capabilities.get("add") or [] if cap != "NET_BIND_SERVICE"}
        if extra:
            adding.append(c["name"])
            added |= extra
    details = ([f'containers {_quote(no_drop)} must set securityContext.capabilities.drop=["ALL"]'] if no_drop else [])
    details += ([f"containers {_quote(adding)} must not include {_quote(added)} in securityContext.capabilities.add"]
                if adding else [])
    return ("unrestricted capabilities", "; ".join(details)) if details else None


CHECKS = (
    Check("hostNamespaces", "baseline", host_namespaces),
    Check("privileged", "baseline", privileged),
    Check("capabilities_baseline", "baseline", capabilities_baseline),
    Check("hostPathVolumes", "baseline", host_path_volumes),
    Check("hostPorts", "baseline", host_ports),
    Check("appArmorProfile", "baseline", app_armor_profile),
    Check("seLinuxOptions", "baseline", se_linux_options),
    Check("procMount", "baseline", proc_mount_baseline),
    Check("seccompProfile_baseline", "baseline", seccomp_profile_baseline),
    Check("sysctls", "baseline", sysctls),
    Check("windowsHostProcess", "baseline", windows_host_process),
    Check("hostProbesAndHostLifecycle", "baseline", host_probes_and_host_lifecycle),
    Check("restrictedVolumes", "restricted", restricted_volumes, overrides=("hostPathVolumes",)),
    Check("allowPrivilegeEscalation", "restricted", allow_privilege_escalation),
    Check("runAsNonRoot", "restricted", run_as_non_root),
    Check("runAsUser", "restricted", run_as_user),
    Check("seccompProfile_restricted", "restricted", seccomp_profile_restricted,
          overrides=("seccompProfile_baseline",)),
    Check("capabilities_restricted", "restricted", capabilities_restricted, overrides=("capabilities_baseline",)),
    Check("procMount_restricted", "restricted", proc_mount_unconditional, overrides=("procMount",)),
)


def checks_of(level: Level) -> tuple[Check, ...]:
    """A level's checks as registry.go builds them: restricted runs baseline's too, minus those it overrides."""
    if level == "baseline":
        return tuple(c for c in CHECKS if c.level == "baseline")
    overridden = {o for c in CHECKS if c.level == "restricted" for o in c.overrides}
    return tuple(c for c in CHECKS if c.id not in overridden)


def evaluate(level: Level, meta: Meta, pod: Pod) -> list[Forbidden]:
    """What `level` forbids in a pod; empty when the pod is admitted."""
    return [Forbidden(check.id, *result) for check in checks_of(level)
            if (result := check.evaluate(meta, pod)) is not None]


def pod_template(manifest: Mapping[str, Any]) -> tuple[Meta, Pod]:
    """The pod (metadata, spec) a Pod, Job, Deployment, StatefulSet or JobSet (of one replicated job) asks for.
    Admission sees a JobSet's pods only when its Job makes them; they are checked here at the JobSet already."""
    if manifest["kind"] == "Pod":
        return manifest.get("metadata") or {}, manifest["spec"]
    if manifest["kind"] == "JobSet":
        (replicated,) = manifest["spec"]["replicatedJobs"]
        manifest = replicated["template"]
    template = manifest["spec"]["template"]
    return template.get("metadata") or {}, template["spec"]


def violations(level: Level, manifest: Mapping[str, Any]) -> list[Forbidden]:
    """What `level` forbids in the pods a workload manifest would create."""
    return evaluate(level, *pod_template(manifest))
