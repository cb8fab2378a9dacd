"""The btrdb conda release walkthrough as a doit DAG.

    source -> skeleton -> recipe -> build:<py> -> convert:<py>-<subdir> -> upload:<file> -> verify

Settings come from recipe/release.toml and `doit NAME=VALUE` (see README).  This file only
declares tasks; each step's work is done in tasks/<step>.py.
"""

from __future__ import annotations

from doit import doit_cmd
from doit.tools import config_changed

from tasks import build, lockfile, manifest, plan, recipe, skeleton, source, upload, verify
from tasks import project as P
from tasks import subdirs
from tasks.checker import XxhashChecker
from tasks.config import load
from tasks.errors import UserError, one_line
from tasks.report import ReleaseReporter

try:
    CONFIG = load(P.ROOT, doit_cmd._CMDLINE_VARS or {})
    PATHS = P.paths(CONFIG)
    RUN_LOCK = lockfile.hold(PATHS.lock)
except UserError as err:
    raise SystemExit(f"error: {err}") from None

NATIVE = subdirs.native()
PLAN = plan.make(CONFIG, NATIVE)

DOIT_CONFIG = {
    "default_tasks": ["verify"],
    "check_file_uptodate": XxhashChecker,
    "reporter": ReleaseReporter,
    "dep_file": str(PATHS.build / ".doit.db"),
    "backend": "sqlite3",
}


def _uptodate(name: str, *settings: str):
    return config_changed(CONFIG.subset(*settings))


def task_source():
    """Fetch the pinned sdist (hash checked) or copy the local checkout, and unpack it."""
    uptodate = [_uptodate("source", "package", "version", "source", "sha256")]
    if CONFIG.local_source is not None:
        uptodate.append(config_changed(source.checkout_fingerprint(CONFIG.local_source, CONFIG.build_dir)))
    return {
        "actions": [(one_line(source.fetch), [CONFIG])],
        "targets": [PATHS.source_record],
        "uptodate": uptodate,
        "clean": [(manifest.clean, [CONFIG])],
    }


def task_skeleton():
    """Generate meta.yaml from the sdist with grayskull (classic format)."""
    return {
        "actions": [(one_line(skeleton.generate), [CONFIG])],
        "file_dep": [PATHS.source_record],
        "targets": [PATHS.skeleton],
        "uptodate": [_uptodate("skeleton", "skeleton")],
    }


def task_recipe():
    """Patch the skeleton with recipe/patch.yaml and the release settings."""
    return {
        "actions": [(one_line(recipe.apply), [CONFIG])],
        "file_dep": [PATHS.skeleton, P.PATCH],
        "targets": [PATHS.meta],
        "uptodate": [_uptodate("recipe", "package", "maintainer", "build_number", "noarch")],
    }


def task_wheel():
    """Build one pure-Python wheel of the source with pip, for every Python version's build."""
    return {
        "actions": [(one_line(build.wheel), [CONFIG])],
        "file_dep": [PATHS.source_record],
        "targets": [PATHS.wheel_dir / "wheel.json"],
    }


def task_build():
    """Build the package for each Python version on this machine's platform (conda-bld)."""
    for item in PLAN.builds:
        yield {
            "name": item.name,
            "actions": [(one_line(build.build), [CONFIG, item.python, item.artifact.subdir, item.artifact.path])],
            "file_dep": [PATHS.meta, PATHS.wheel_dir / "wheel.json"],
            "targets": [item.artifact.path],
            "uptodate": [_uptodate(f"build-{item.name}", "format")],
            "clean": True,
        }


def task_convert():
    """Convert each build to every other platform (platform-builds), as `conda convert`."""
    from tasks import convert

    for item in PLAN.conversions:
        yield {
            "name": item.name,
            "actions": [(one_line(convert.convert), [item.build.artifact.path, item.artifact.subdir,
                                                     item.artifact.path], {"force": CONFIG.force})],
            "file_dep": [item.build.artifact.path],
            "targets": [item.artifact.path],
            "uptodate": [_uptodate(f"convert-{item.name}", "force")],
            "clean": True,
        }


def task_upload():
    """Publish every artifact to the target (a local channel by default) and stamp it."""
    for artifact in PLAN.published:
        yield {
            "name": artifact.key,
            "actions": [(one_line(upload.publish), [CONFIG, artifact])],
            "file_dep": [artifact.path],
            "targets": [P.stamp(CONFIG, artifact)],
            "uptodate": [_uptodate(f"upload-{artifact.key}", "target", "owner", "labels", "force",
                                   "channel", "quetz_url")],
        }


def task_manifest():
    """Write build/release.json: every published file with its size, hashes and state."""
    stamps = [P.stamp(CONFIG, a) for a in PLAN.published]
    return {
        "actions": [(one_line(manifest.write), [CONFIG, PLAN.published])],
        "file_dep": stamps,
        "targets": [PATHS.manifest],
    }


def task_verify():
    """Read every artifact back with py-rattler and install this platform's from the channel."""
    return {
        "actions": [(one_line(verify.run), [CONFIG, PLAN.published, NATIVE])],
        "file_dep": [PATHS.manifest],
        "targets": [P.verify_stamp(CONFIG)],
        "verbosity": 2,
    }
