"""``openmer benchmark robustness``'s options (:mod:`openmer.benchmarks.robustness`)."""

from __future__ import annotations

from typing import Any

from openmer.errors import ConfigError


def robustness_cfg(name: str, data: str | None, *, seed: int, quick: bool, profile: str | None,
                   corruptions: str | None, severities: str | None) -> Any:
    """The robustness preset on ``data`` (default emodb) with ``--corruptions`` / ``--severities``.

    Raises:
        ConfigError: the options on another benchmark, an unknown corruption, severities that are
            not positive integers.
    """
    from openmer.benchmarks.registry import on_profile
    from openmer.benchmarks.robustness import robustness_config
    from openmer.media.corruptions import parse_corruptions

    if name != "robustness":
        raise ConfigError(f"--corruptions and --severities apply to benchmark robustness, not {name}")
    cfg = on_profile(robustness_config(data or "emodb", seed=seed, quick=quick), profile)
    update: dict[str, Any] = {}
    if corruptions:
        update["corruptions"] = parse_corruptions(corruptions)
    if severities:
        try:
            sev = tuple(int(s) for s in severities.split(",") if s.strip())
        except ValueError:
            raise ConfigError(f"--severities takes integers like 1,3, not {severities!r}") from None
        if not sev or min(sev) < 1:
            raise ConfigError(f"--severities must be positive integers, not {severities!r}")
        update["severities"] = sev
    return cfg.model_copy(update=update) if update else cfg
