"""Origins stay upstream (pure): every clone sdboot makes keeps the upstream URL as its
`origin`, and a mirror applies only through process-scoped `url.<mirror>.insteadOf` rules
(GIT_CONFIG_COUNT / _KEY_n / _VALUE_n). git older than 2.31 ignores those variables: there
the mirror's URL is cloned and the origin set to the upstream afterwards. Also: what a stored
origin should be (its upstream form), for doctor's origin-proxy finding and its fix."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sdboot.mirrors.table import (
    Mirror,
    MirrorTable,
    canonical_url,
    git_rewrites,
    map_url,
    substitute,
)


@dataclass(frozen=True)
class ClonePlan:
    url: str  # what `git clone` is given
    origin: str  # what remote.origin.url must be afterwards: the upstream
    fetched: str  # where the code comes from (through the mirror), for the record
    env: dict[str, str] = field(default_factory=dict)  # GIT_CONFIG_* for the clone

    def config_args(self) -> list[str]:
        """The same rules as `-c key=value` arguments (to show a clone command)."""
        return rules_as_args(self.env)


def rules_env(mirror: Mirror | None, table: MirrorTable, base: int = 0) -> dict[str, str]:
    """GIT_CONFIG_COUNT / KEY_n / VALUE_n for the mirror's insteadOf rules (and the dead
    upstreams' substitutes), continuing a GIT_CONFIG_COUNT of `base` entries."""
    rules = git_rewrites(mirror, table.substitutions)
    if not rules:
        return {}
    env = {"GIT_CONFIG_COUNT": str(base + len(rules))}
    for i, (new, old) in enumerate(rules, start=base):
        env[f"GIT_CONFIG_KEY_{i}"] = f"url.{new}.insteadOf"
        env[f"GIT_CONFIG_VALUE_{i}"] = old
    return env


def rules_as_args(env: Mapping[str, str]) -> list[str]:
    """GIT_CONFIG_KEY_n / VALUE_n pairs -> ['-c', 'key=value', ...], in their order."""
    keys = sorted((int(k.rsplit("_", 1)[1]), k) for k in env
                  if k.startswith("GIT_CONFIG_KEY_") and k.rsplit("_", 1)[1].isdigit())
    args: list[str] = []
    for n, key in keys:
        args += ["-c", f"{env[key]}={env.get(f'GIT_CONFIG_VALUE_{n}', '')}"]
    return args


def upstream_of(url: str, table: MirrorTable) -> str:
    """The upstream a URL stands for: the proxy prefix or mirror host taken off, a dead
    repository replaced by its copy."""
    return substitute(canonical_url(url, table), table.substitutions)


def plan_clone(url: str, mirror: Mirror | None, table: MirrorTable, *, config_env: bool,
               git_count_base: int = 0) -> ClonePlan:
    """How to clone `url` (upstream, or already behind a proxy) through `mirror` so that the
    clone's origin is the upstream URL. config_env: git reads GIT_CONFIG_* (>= 2.31)."""
    upstream = upstream_of(url, table)
    fetched = map_url(upstream, mirror, table)
    if config_env:
        return ClonePlan(upstream, upstream, fetched, rules_env(mirror, table, git_count_base))
    return ClonePlan(fetched, upstream, fetched)


def proxied_origin(stored: str | None, table: MirrorTable) -> str | None:
    """The upstream URL a stored origin should be, when it is a mirror's (a proxy prefix,
    a clone-only or host-replacing mirror); None when it already is upstream (or unset)."""
    if not stored:
        return None
    upstream = canonical_url(stored, table)
    return upstream if upstream != stored else None
