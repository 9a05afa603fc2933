"""The policies the SLA tracker computes with: the one in force and every archived one.

Events record the policy version they were decided under, so a replay needs the old
versions too (`CASEBOOK_POLICY_ARCHIVE_DIR`, and the earlier versions of the shipped
default, which casebook keeps); two files claiming one version differently
are refused, since a deadline could then not be re-proven.
"""

from __future__ import annotations

from pathlib import Path

from casebook.policy_source import earlier_default_policies, load_policy
from casebook.settings import Settings
from domain.policy import Policy, PolicyError
from projections.sla.targets import TargetBook


def target_book(settings: Settings) -> TargetBook:
    """The policy in force and every archived version, so replays use the one recorded."""
    policies = [load_policy(settings.policy_file)]
    archive: Path | None = settings.policy_archive_dir
    if archive is not None:
        if not archive.is_dir():
            raise PolicyError(f"{archive}: policy archive is not a directory")
        policies.extend(load_policy(path) for path in sorted(archive.glob("*.toml")))
    # The shipped earlier defaults fill in versions no configured file claims.
    claimed = {policy.version for policy in policies}
    policies.extend(p for p in earlier_default_policies() if p.version not in claimed)
    return TargetBook(_one_per_version(policies))


def _one_per_version(policies: list[Policy]) -> list[Policy]:
    seen: dict[str, Policy] = {}
    for policy in policies:
        if policy.version in seen and seen[policy.version] != policy:
            raise PolicyError(f"two different policies claim version {policy.version!r}")
        seen[policy.version] = policy
    return list(seen.values())
