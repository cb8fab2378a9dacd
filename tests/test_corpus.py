"""The compatibility corpus (tests/corpus.py): every package releases by settings alone and
verifies, or stops with one clear line; a second run then executes nothing."""

from __future__ import annotations

import json

import pytest

from corpus import CORPUS, Case, release

pytestmark = pytest.mark.pypi


@pytest.mark.parametrize("case", CORPUS, ids=[f"{c.name}-{c.version}" for c in CORPUS])
def test_releases_by_settings_alone(case: Case, tmp_path):
    project, proc, _ = release(case, tmp_path / "proj")
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out, out
    if case.refused:
        errors = [line for line in out.splitlines() if line.startswith("error:")]
        assert proc.returncode != 0 and len(errors) == 1 and case.refused in errors[0], out
        return
    assert proc.returncode == 0, out
    record = json.loads((project.build / "stamps" / "verify-local.json").read_text())
    subdirs = {entry["subdir"] for entry in record["archives"]}
    assert subdirs == {"linux-64", "win-64", "osx-arm64", "linux-aarch64"}
    assert len(record["archives"]) == 8
    native = [item for item in record["installs"] if "py311" in item["file"]]
    assert native and native[0]["imports"] and all(r == "ok" for r in native[0]["imports"].values()), native
    assert all(r.endswith("ok") for r in native[0].get("scripts", {}).values()), native
    again = project.doit(f"package={case.name}", f"version={case.version}", "pythons=3.11,3.12",
                         "platforms=linux-64,win-64,osx-arm64,linux-aarch64")
    assert project.executed(again) == []
