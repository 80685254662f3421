"""pytest plugin for the emulated aarch64 run (loaded by .ci/arm.sh with ``-p``).

Under qemu user-mode emulation code runs 5-20x slower than natively, so hypothesis's
per-example deadline (200 ms by default) would report slowness, not wrong results. This
plugin turns the deadline and the too-slow health checks off; what the tests assert is
unchanged. It is loaded last so that it also wins over a profile a conftest may load.
"""

from __future__ import annotations

import pytest


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    try:
        from hypothesis import HealthCheck, settings
    except ImportError:  # the hypothesis wheel is part of .ci/arm-requirements.txt
        return
    parent = settings.get_profile(settings.get_current_profile_name())
    slow = {HealthCheck.too_slow, HealthCheck.data_too_large}
    settings.register_profile(
        "qemu",
        parent=parent,
        deadline=None,
        suppress_health_check=sorted(
            set(parent.suppress_health_check) | slow, key=lambda check: check.value
        ),
    )
    settings.load_profile("qemu")
