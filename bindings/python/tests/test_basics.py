"""Versions, status strings and the error mapping."""
import ctypes
import re

from conftest import REPO

import llavauhd
from llavauhd import _errors
from llavauhd._lib import lib


def test_versions():
    """The release is written once, in the header's LUHD_VERSION_* macros: the library reports
    it, the package's __version__ is the library's, and pyproject.toml's static version (which
    a build backend needs as text) must equal it."""
    assert lib.luhd_abi_version() == llavauhd.ABI_VERSION == 2
    header = (REPO / "include" / "llavauhd.h").read_text()
    parts = [re.search(rf"#define LUHD_VERSION_{p} (\d+)", header).group(1) for p in ("MAJOR", "MINOR", "PATCH")]
    assert llavauhd.__version__ == ".".join(parts) == "1.0.0"
    major, minor, patch = map(int, parts)
    assert lib.luhd_version_number() == major * 10000 + minor * 100 + patch
    pyproject = (REPO / "bindings" / "python" / "pyproject.toml").read_text()
    assert re.search(r'^version = "([^"]+)"', pyproject, re.M).group(1) == llavauhd.__version__


def test_status_strings_cover_every_code():
    for code, cls in _errors.BY_STATUS.items():
        text = lib.luhd_status_string(code).decode()
        assert text and text != "unknown status", code
        assert cls.status == code
    assert lib.luhd_status_string(0) == b"ok"
    assert lib.luhd_status_string(999) == b"unknown status"
    assert lib.luhd_status_string(-1) == b"unknown status"


def test_every_header_status_has_an_exception():
    header = (REPO / "include" / "llavauhd.h").read_text()
    for code, name in _errors.STATUS_NAMES.items():
        assert f"{name} = {code}" in header


def test_last_error_is_per_call_message():
    out = ctypes.c_void_p()
    status = lib.luhd_model_load(None, None, ctypes.byref(out))
    assert status == 1
    assert b"path is NULL" in lib.luhd_last_error()
    assert out.value is None
