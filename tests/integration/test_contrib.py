"""contrib/: the systemd unit is one systemd accepts (systemd-analyze verify,
with the binary path pointed at the build), and it runs postern as its own
unprivileged user with only CAP_NET_BIND_SERVICE, the file system read-only
but for the spool and the Maildirs."""

import shutil
import subprocess

import pytest

from conftest import POSTERN_BIN, REPO

UNIT = REPO / "contrib" / "systemd" / "postern.service"


def unit_settings():
    out = {}
    for line in UNIT.read_text().splitlines():
        if line and not line.startswith(("#", "[")) and "=" in line:
            k, v = line.split("=", 1)
            out.setdefault(k, []).append(v)
    return out


def test_unit_verifies(tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed")
    unit = tmp_path / "postern.service"
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/postern", POSTERN_BIN))
    r = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_unit_hardening():
    s = unit_settings()
    assert s["User"] == ["postern"] and s["NoNewPrivileges"] == ["yes"]
    assert s["CapabilityBoundingSet"] == ["CAP_NET_BIND_SERVICE"]
    assert s["AmbientCapabilities"] == ["CAP_NET_BIND_SERVICE"]
    assert s["ProtectSystem"] == ["strict"]
    assert s["ReadWritePaths"] == ["/var/spool/postern /var/mail/postern"]
    # the paths it may write are the defaults of the example configuration
    conf = (REPO / "conf" / "postern.json").read_text()
    assert '"spool_dir": "/var/spool/postern"' in conf and '"mail_root": "/var/mail/postern"' in conf
    assert any("check-config" in v for v in s["ExecStartPre"])
