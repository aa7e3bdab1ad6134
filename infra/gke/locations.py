"""GCE regions and their zones, so a stack's `region` and `zones` are checked offline, before anything is planned.

GKE refuses a node location that does not exist only minutes into `pulumi up`, and a misspelt region fails the
same way; with this table the config error names the fix instead (the closest region, the region's real zones).

Source: https://cloud.google.com/compute/docs/regions-zones ("Available regions and zones"), as of 2026-11-25.
Zone letters are not always a, b, c: us-central1 has a, b, c, f; us-east1 and europe-west1 have b, c, d.
To refresh, or to add a region this table lacks, list what your project sees and update the entries:

    gcloud compute zones list --format='value(region.basename(), name)' | sort
"""

from __future__ import annotations

import difflib


def _zones(region: str, letters: str = "abc") -> tuple[str, ...]:
    return tuple(f"{region}-{letter}" for letter in letters)


ZONES: dict[str, tuple[str, ...]] = {
    region: _zones(region, letters)
    for region, letters in (
        # The Americas
        ("us-central1", "abcf"),
        ("us-east1", "bcd"),
        ("us-east4", "abc"),
        ("us-east5", "abc"),
        ("us-south1", "abc"),
        ("us-west1", "abc"),
        ("us-west2", "abc"),
        ("us-west3", "abc"),
        ("us-west4", "abc"),
        ("northamerica-northeast1", "abc"),
        ("northamerica-northeast2", "abc"),
        ("southamerica-east1", "abc"),
        # Europe and the Middle East
        ("europe-west1", "bcd"),
        ("europe-west2", "abc"),
        ("europe-west3", "abc"),
        ("europe-west4", "abc"),
        ("europe-west6", "abc"),
        ("europe-west8", "abc"),
        ("europe-west9", "abc"),
        ("europe-north1", "abc"),
        ("europe-central2", "abc"),
        ("europe-southwest1", "abc"),
        ("me-west1", "abc"),
        # Asia Pacific
        ("asia-east1", "abc"),
        ("asia-northeast1", "abc"),
        ("asia-northeast3", "abc"),
        ("asia-south1", "abc"),
        ("asia-southeast1", "abc"),
        ("australia-southeast1", "abc"),
    )
}


def default_zones(region: str) -> tuple[str, ...]:
    """Two zones of the region, its first and third (us-central1-a and -c): nodes survive one zone's outage
    without paying for a third zone's minimum nodes."""
    zones = ZONES[region]
    return zones[0], zones[2]


def region_problem(region: str) -> str | None:
    """Why `region` is not a known region, naming the closest one, or None when it is one."""
    if region in ZONES:
        return None
    close = difflib.get_close_matches(region, ZONES, n=1, cutoff=0.6)
    fix = f"did you mean {close[0]}?" if close else "use a region such as us-central1, europe-west4 or asia-southeast1"
    return f"{region!r} is not a GCP region; {fix} (known regions: infra/gke/locations.py)"


def zones_problem(zones: tuple[str, ...], region: str) -> str | None:
    """Why `zones` cannot be node locations in `region` (a known region), or None when they can."""
    valid = ZONES[region]
    if not zones:
        return f"needs at least one zone of {region}: {', '.join(valid)}"
    for zone in zones:
        if zone not in valid:
            return f"{zone!r} is not a zone of region {region}; its zones are {', '.join(valid)}"
    if len(set(zones)) != len(zones):
        return "lists a zone twice"
    return None
