"""What the restricted Pod Security Standard and our own rules ask of a pod spec, as
readable checks shared by the Kubernetes tests. Each returns the broken rules, named."""

from typing import Any

ALLOWED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}


def restricted_problems(pod: dict[str, Any]) -> list[str]:
    """The restricted profile (Kubernetes Pod Security Standards), for one pod spec."""
    problems = []
    security = pod.get("securityContext", {})
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field):
            problems.append(f"{field} is on")
    for volume in pod.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= ALLOWED_VOLUMES:
            problems.append(f"volume {volume['name']} is {sorted(kinds)}")
    for container in pod.get("initContainers", []) + pod["containers"]:
        name, own = container["name"], container.get("securityContext", {})
        if own.get("privileged"):
            problems.append(f"{name} is privileged")
        if own.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name} may gain privileges")
        if "ALL" not in own.get("capabilities", {}).get("drop", []):
            problems.append(f"{name} keeps capabilities")
        if set(own.get("capabilities", {}).get("add", [])) - {"NET_BIND_SERVICE"}:
            problems.append(f"{name} adds capabilities")
        if not own.get("runAsNonRoot", security.get("runAsNonRoot")):
            problems.append(f"{name} may run as root")
        if own.get("runAsUser", security.get("runAsUser")) == 0:
            problems.append(f"{name} runs as uid 0")
        seccomp = own.get("seccompProfile", security.get("seccompProfile", {}))
        if seccomp.get("type") not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{name} has no seccomp profile")
        for port in container.get("ports", []):
            if port.get("hostPort"):
                problems.append(f"{name} uses a host port")
    return problems


def limits_problems(pod: dict[str, Any]) -> list[str]:
    problems = []
    for container in pod["containers"]:
        resources = container.get("resources", {})
        for kind in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if resource not in resources.get(kind, {}):
                    problems.append(f"{container['name']} has no {resource} {kind[:-1]}")
    return problems


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A label selector (matchLabels only, as ours are) against a set of labels."""
    assert set(selector) <= {"matchLabels"}, "only matchLabels selectors are read here"
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())
