"""pytest plugin for the emulated ARM runs (loaded by .ci/arm.sh with ``-p``).

Under qemu user-mode emulation Python runs about ten times slower than natively. Two
adjustments keep the run to a few minutes without changing what any test asserts:

* hypothesis's per-example deadline (200 ms by default) and its too-slow health checks are
  turned off: under emulation they would report slowness, not wrong results;
* every property test runs at most ``ARM_MAX_EXAMPLES`` (default 10) examples. The native run
  (``make test``) explores the full count; the emulated run is there to catch what differs
  on ARM (float code paths, NEON kernels, alignment, word size), which shows on any input.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

MAX_EXAMPLES = int(os.environ.get("ARM_MAX_EXAMPLES", "10"))


def _emulation_settings(parent: Any) -> Any:
    from hypothesis import HealthCheck, settings

    slow = {HealthCheck.too_slow, HealthCheck.data_too_large}
    return settings(
        parent,
        deadline=None,
        max_examples=min(parent.max_examples, MAX_EXAMPLES),
        suppress_health_check=sorted(
            set(parent.suppress_health_check) | slow, key=lambda check: check.value
        ),
    )


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    try:
        from hypothesis import settings
    except ImportError:  # the hypothesis wheel is in .ci/arm-requirements-*.txt
        return
    parent = settings.get_profile(settings.get_current_profile_name())
    settings.register_profile("qemu", _emulation_settings(parent))
    settings.load_profile("qemu")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # An explicit @settings(max_examples=..., deadline=...) on a test wins over any profile, so
    # the cap is applied to each collected property test as well. hypothesis reads these
    # settings when the test is called (attribute pinned with the hypothesis version).
    for item in items:
        test = getattr(item, "obj", None)
        current = getattr(test, "_hypothesis_internal_use_settings", None)
        if current is not None:
            test._hypothesis_internal_use_settings = _emulation_settings(current)  # type: ignore[union-attr]
