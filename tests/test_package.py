"""The package imports with numpy alone and has one exception root."""

from __future__ import annotations

import subprocess
import sys

import pytest

import isthmus


def test_version_comes_from_the_native_module() -> None:
    assert isthmus.__version__ == isthmus._core.__version__
    assert isthmus.__version__.count(".") == 2


@pytest.mark.parametrize(
    "name", ["TagError", "DecodeError", "SignalError", "DiagnosticsError", "ConfigError"]
)
def test_value_errors_share_one_root(name: str) -> None:
    cls = getattr(isthmus, name)
    assert issubclass(cls, isthmus.IsthmusError)
    assert issubclass(cls, ValueError)


def test_core_import_pulls_in_no_protocol_library() -> None:
    code = (
        "import sys, isthmus; "
        "heavy = [m for m in ('pymodbus', 'asyncua', 'aiomqtt', 'msgspec', 'scipy') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
