"""The btrdb conda release walkthrough as a doit DAG.

    source -> skeleton -> recipe -> build:<py> -> convert:<py> -> upload:<file>
        -> manifest -> check:<py> -> verify          (and `status`, a view outside the DAG)
    binaries=wheels:  select -> pack:<subdir>/<py> -> upload:<file> -> manifest -> check:<py> -> verify

Settings come from recipe/release.toml and `doit NAME=VALUE` (see README).  This file only
declares tasks; each step's work is done in tasks/<step>.py.
"""

from __future__ import annotations

import functools
import gc
import sys

# Loading a thousand tasks allocates tens of thousands of objects that live until doit exits; the
# cyclic collector would walk them again and again (~0.15 s at 1,000 artifacts).  It is off until
# the tasks are made: ReleaseReporter.initialize then freezes them out of its reach and turns it
# back on, and every action (a Step) turns it on too, so actions run with it under any reporter.
gc.disable()

from doit import doit_cmd

from tasks import conda_engine, lockfile, plan, source
from tasks import project as P
from tasks import subdirs
from tasks.checker import SettingsChanged, XxhashChecker
from tasks.config import load, settle
from tasks.errors import Step, UserError
from tasks.report import ReleaseReporter

def _only_ci(argv: list[str]) -> bool:
    """The command line asks for the `ci` task alone (its options and settings aside)."""
    words, skip = [], False
    for word in argv:
        if not skip and not word.startswith("-") and "=" not in word:
            words.append(word)
        skip = word in ("--output", "-o")  # the option's value is no task name
    return words == ["ci"]


def _no_wheel(config) -> frozenset[str]:
    """platforms=all with binaries=wheels means every subdir the package has a wheel for: which
    those are is read from build/downloads (asked of the index once), before the tasks are made."""
    from tasks import wheels

    return wheels.gaps(config)


try:
    _OVERRIDES = dict(doit_cmd._CMDLINE_VARS or {})
    _ASKED = load(P.ROOT, _OVERRIDES)
    # `doit ci` only writes a workflow for other machines: engine=conda must not need conda here.
    _LOCAL_ENGINE = "embedded" if _only_ci(sys.argv[1:]) else conda_engine.resolve(_ASKED.engine)
    CONFIG = settle(_ASKED, _LOCAL_ENGINE)
    PATHS = P.paths(CONFIG)
    RUN_LOCK = lockfile.hold(PATHS.lock)
except UserError as err:
    raise SystemExit(f"error: {err}") from None

NATIVE = subdirs.native()
WHEELS = CONFIG.binaries == "wheels"  # each subdir's package from its own wheel: no sdist, no build
try:
    NO_WHEEL = _no_wheel(CONFIG) if WHEELS and CONFIG.all_platforms else frozenset()
except UserError as err:
    raise SystemExit(f"error: {err}") from None
PLAN = plan.make(CONFIG, NATIVE, NO_WHEEL)


def _unused() -> dict:
    """A task binaries=wheels does not run (a new dict each time: doit writes into it)."""
    return {"actions": None, "doc": "(not used with binaries=wheels: the packages come from the wheels)"}

STAMPS = P.stamps(CONFIG, PLAN.published)
CONDA = conda_engine.conda_settings(CONFIG, CONFIG.engine)  # the steps that run conda tools

DOIT_CONFIG = {
    "default_tasks": ["verify"],
    "check_file_uptodate": XxhashChecker,
    "reporter": ReleaseReporter.for_release(CONFIG, PLAN),  # the summary table knows the plan
    "dep_file": str(PATHS.build / ".doit.db"),
    "backend": "sqlite3",
}


@functools.cache
def _changed(*settings: str) -> SettingsChanged:
    """Rerun a task when one of these settings changes (nikola's config_changed habit); one
    shared check per set of settings."""
    return SettingsChanged(CONFIG.subset(*settings))


def task_toolchain():
    """Report the engine in use and the conda tools' versions; a missing tool stops here."""
    return {
        "actions": [(Step("conda_engine:report"), [CONFIG])],
        "uptodate": [False] if CONDA else [True],
        "verbosity": 2,
    }


def _conda_dep(step: str) -> list[str]:
    return ["toolchain"] if step in CONDA else []


def task_source():
    """Fetch the pinned sdist (hash checked) or copy the local checkout, and unpack it."""
    settings = CONFIG.subset("package", "version", "source", "sha256")
    if CONFIG.local_source is not None:  # a checkout's edits rerun the release from the top
        settings["checkout"] = source.checkout_fingerprint(CONFIG.local_source, CONFIG.build_dir)
    uptodate = [SettingsChanged(settings)]  # one per task: doit keeps one config_changed value
    return {
        "actions": [(Step("source:fetch"), [CONFIG])],
        "targets": [PATHS.source_record],
        "uptodate": uptodate,
        "clean": [(Step("manifest:clean"), [CONFIG])],
    }


def task_skeleton():
    """Generate meta.yaml from the sdist with grayskull (classic format)."""
    if WHEELS:
        return _unused()
    generate = Step("skeleton:generate" if CONFIG.skeleton != "conda" else "conda_engine:skeleton")
    return {
        "actions": [(generate, [CONFIG])],
        "file_dep": [PATHS.source_record],
        "targets": [PATHS.skeleton],
        "task_dep": _conda_dep("skeleton"),
        "uptodate": [_changed("skeleton")],
        "verbosity": 2,
    }


def task_recipe():
    """Check the skeleton against the built wheel, then patch it with recipe/patch.yaml and the settings."""
    if WHEELS:
        return _unused()
    return {
        "actions": [(Step("recipe:apply"), [CONFIG])],
        "file_dep": [PATHS.skeleton, P.PATCH] + ([PATHS.wheel_dir / "wheel.json"] if CONFIG.skeleton != "conda" else []),
        "targets": [PATHS.meta],
        "uptodate": [_changed("package", "maintainer", "build_number", "noarch", "skeleton")],
        "verbosity": 2,
    }


def task_wheel():
    """Build one wheel of the source (its backend in place, or pip): what builds install and the
    skeleton is checked against."""
    if WHEELS:
        return _unused()
    if CONFIG.engine == "conda" and CONFIG.skeleton == "conda":
        return {"actions": None, "doc": "(not used: conda-build runs the recipe's pip install)"}
    return {
        "actions": [(Step("build:wheel"), [CONFIG])],
        "file_dep": [PATHS.source_record],
        "targets": [PATHS.wheel_dir / "wheel.json"],
        "uptodate": [_changed("engine")],
    }


def task_build():
    """Build the package for each Python version on this machine's platform (conda-bld)."""
    conda = CONFIG.engine == "conda"
    inputs = [PATHS.meta, PATHS.source_record] if conda else [PATHS.meta, PATHS.wheel_dir / "wheel.json"]
    # conda-build resolves its host environment from the channels; the embedded engine uses none.
    settings = ("format", "engine", "channels") if conda else ("format", "engine")
    for item in PLAN.builds:
        yield {
            "name": item.name,
            # What was published from these very inputs is fetched back, not built again.
            "actions": [(Step("restore:build"), [CONFIG, item.artifact])],
            "file_dep": inputs,
            "targets": [item.artifact.path],
            "task_dep": _conda_dep("engine"),
            "uptodate": [_changed(*settings)],
            "clean": True,
        }


def task_convert():
    """Convert each build to every other platform asked (platform-builds), as `conda convert -p …`."""
    for item in PLAN.conversions:
        yield {
            "name": item.name,
            "actions": [(Step("restore:convert"), [CONFIG, item.build.artifact.path, item.artifacts])],
            # the recipe selects each subdir's run requirements (in-house converter)
            "file_dep": [item.build.artifact.path] + ([PATHS.meta] if CONFIG.converter != "conda" else []),
            "targets": [artifact.path for artifact in item.artifacts],
            "task_dep": _conda_dep("converter"),
            "uptodate": [_changed("force", "converter")],
            "clean": True,
        }


def task_select():
    """Choose each (subdir, Python)'s wheel with pip (binaries=wheels): hash checked, cached in build/downloads."""
    if not WHEELS:
        return {"actions": None, "doc": "(binaries=wheels only: choose each platform's wheel)"}
    return {
        "actions": [(Step("wheels:select"), [CONFIG, PLAN.packs])],
        "targets": [item.choice for item in PLAN.packs],
        "uptodate": [_changed("package", "version")],
        "verbosity": 2,
        "clean": [(Step("manifest:clean"), [CONFIG])],  # source, which cleans otherwise, is not run
    }


def task_pack():
    """Turn each chosen wheel into its subdir's conda package, laid out as conda-build would."""
    for item in PLAN.packs:
        yield {
            "name": item.name,
            "actions": [(Step("wheels:pack"), [CONFIG, item])],
            "file_dep": [item.choice],
            "targets": [item.artifact.path],
            "uptodate": [_changed("format", "build_number", "binaries")],
            "clean": True,
        }


def _target_settings() -> dict:
    """What decides where uploads go; retries and timeout do not change what gets published."""
    settings = CONFIG.subset("target", "owner", "labels", "force", "channel", "quetz_url")
    if CONFIG.target == "anaconda":  # the server is anaconda-client's own setting
        from tasks.anaconda import client_settings

        settings["api_url"] = client_settings()[0]
    return settings


def task_upload():
    """Publish every artifact to the target (a local channel by default) and stamp it."""
    target = SettingsChanged(_target_settings())  # one check shared by every upload
    for artifact in PLAN.published:
        yield {
            "name": artifact.key,
            "actions": [(Step("upload:publish"), [CONFIG, artifact])],
            "file_dep": [artifact.path],
            "targets": [STAMPS[artifact.key]],
            "uptodate": [target],
            "verbosity": 2,
        }


def task_manifest():
    """Write build/release.json: every published file with its size, hashes and state."""
    return {
        "actions": [(Step("manifest:write"), [CONFIG, PLAN.published])],
        "file_dep": list(STAMPS.values()),
        "targets": [PATHS.manifest],
    }


def task_check():
    """Read one build's artifacts back with py-rattler; install this platform's from the channel."""
    for build, artifacts in PLAN.checks().items():
        yield {
            "name": build,
            "actions": [(Step("verify:check"), [CONFIG, build, artifacts, NATIVE])],
            "file_dep": [PATHS.manifest],
            "targets": [P.check_stamp(CONFIG, build)],
            "uptodate": [_changed("channel_url", "engine", "channels", "binaries")],
        }


def task_verify():
    """The walkthrough's "test the deployment": every build's check, merged and shown."""
    builds = list(PLAN.checks())
    return {
        "actions": [(Step("verify:run"), [CONFIG, builds])],
        "file_dep": [P.check_stamp(CONFIG, build) for build in builds],
        "targets": [P.verify_stamp(CONFIG)],
        "verbosity": 2,
    }


def task_status():
    """Show what is built, published and verified, and what the next `doit` would run and why."""
    return {
        "actions": [(Step("status:show"), [CONFIG, PLAN, __name__])],
        "params": [
            {"name": "remote", "long": "remote", "type": bool, "default": False,
             "help": "ask the target what it holds and flag files whose sha256 differs from our stamp"},
            {"name": "json_path", "long": "json", "type": str, "default": "",
             "help": "also write the status as JSON (the shape of release.json) to this file, or - for stdout"},
        ],
        "uptodate": [False],  # a view: it always runs, and nothing depends on it
        "verbosity": 2,
    }



def task_ci():
    """Write the GitHub Actions release matrix (.github/workflows/conda-release.yml) from the settings."""
    # The engine as asked, not as this machine resolved it: the runners are other machines.
    return {
        "actions": [(Step("ci:generate"), [_ASKED, _OVERRIDES])],
        "params": [
            {"name": "output", "long": "output", "short": "o", "type": str,
             "default": P.WORKFLOW.relative_to(P.ROOT).as_posix(),
             "help": "where to write the workflow, relative to the project (default %(default)s)"},
        ],
        "uptodate": [False],  # cheap, and the file may have been edited by hand: always rewrite it
        "verbosity": 2,
    }
