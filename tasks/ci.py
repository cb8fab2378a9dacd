"""`doit ci`: the release as a GitHub Actions matrix, and the final job's merge-and-verify.

Planning is pure: `workflow(config, engine)` returns the workflow as plain data (dicts in
a fixed order), `render` dumps it to the same bytes every time, `write` is the one effect.  The
workflow's jobs run this project's own commands on each runner (`./dev release platforms=<subdir>
…`); the last job runs `python -m tasks.ci merge-verify DIR… NAME=VALUE…`, which merges every
job's release.json into one and checks the target holds each file with the recorded sha256.
"""

from __future__ import annotations

import dataclasses
import io
import json
import shlex
import sys
from pathlib import Path
from typing import Any, Iterable, Sequence

from . import fsio
from . import project as P
from .config import Config
from .errors import UserError

# GitHub-hosted runner of each subdir a package can be built on natively.
RUNNERS = {
    "linux-64": "ubuntu-latest",
    "linux-aarch64": "ubuntu-24.04-arm",
    "osx-64": "macos-13",
    "osx-arm64": "macos-14",
    "win-64": "windows-latest",
}
# Actions pinned to full commit SHAs (a tag can be moved; a commit cannot).  Bump by hand.
CHECKOUT = "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683"  # v4.2.2
SETUP_PYTHON = "actions/setup-python@0b93645e9fea7318ecaed2b359559ac225c90a2b"  # v5.3.0
SETUP_MINICONDA = "conda-incubator/setup-miniconda@d2e6a045a86077fb6cad6f5adf368e9076ddaa8d"  # v3.1.0
UPLOAD_ARTIFACT = "actions/upload-artifact@65c4c4a1ddee5b72f698fdd19549f0f0fb45cf08"  # v4.6.0
DOWNLOAD_ARTIFACT = "actions/download-artifact@fa0a91b85d4f404e444e00e005971372dc801d16"  # v4.1.8
TOOL_PYTHON = "3.12"  # the Python this tool runs on (not the Pythons the package is built for)
SECRETS = {"anaconda": "ANACONDA_API_TOKEN", "quetz": "QUETZ_API_KEY"}
# The jobs holding the secret run in a deployment environment, where a maintainer can require a
# reviewer or restrict it to tags; GitHub creates it on the first run.
ENVIRONMENT = "conda-release"
MANIFESTS = "manifests"  # where the verify job downloads every job's artifact


@dataclasses.dataclass(frozen=True)
class Job:
    """One runner: builds natively for `subdir`, and publishes `platforms` (its own, plus any
    reached by conversion from it)."""

    subdir: str
    platforms: tuple[str, ...]

    @property
    def id(self) -> str:
        return f"release-{self.subdir}"

    @property
    def runner(self) -> str:
        return RUNNERS[self.subdir]


def ci_engine(asked: str) -> str:
    """`auto` means what a fresh runner has: no conda-build, so the embedded engine."""
    return "conda" if asked == "conda" else "embedded"


def _one_job(config: Config, engine: str) -> bool:
    """One job reaches every platform: a pure-Python build converted (the embedded engine's
    are), a noarch one, or packages made from the index's own wheels (`binaries=wheels`: each
    subdir's from its wheel, no native build)."""
    return engine != "conda" or config.noarch or config.binaries == "wheels"


def jobs(config: Config, engine: str) -> tuple[Job, ...]:
    """One job per native platform asked; platforms without a runner are converted by the first."""
    if config.target == "local":
        raise UserError("doit ci needs a target every runner reaches: add target=anaconda (or target=quetz "
                        "quetz-url=URL channel=NAME); a local channel does not outlive its runner")
    if _one_job(config, engine):
        return (Job("linux-64", ("all",) if config.all_platforms else config.platforms),)
    native = [subdir for subdir in RUNNERS if subdir in config.platforms]
    if not native:
        raise UserError(f"engine=conda builds natively, and none of {', '.join(config.platforms)} has a "
                        f"GitHub-hosted runner: ask for one of {', '.join(RUNNERS)}")
    converted = tuple(subdir for subdir in config.platforms if subdir not in RUNNERS)
    first, *rest = native
    return (Job(first, (first, *converted)), *(Job(subdir, (subdir,)) for subdir in rest))


def settings(config: Config, engine: str) -> list[str]:
    """The doit variables every job and the verify job are given: what decides the files and
    where they go.  `force` is left out on purpose: jobs racing to replace files would not
    converge.  The rest (sha256 pins, source) the runner reads from recipe/release.toml."""
    pairs = {"package": config.package, "version": config.version, "pythons": ",".join(config.pythons),
             "format": config.format, "build-number": str(config.build_number),
             "maintainer": config.maintainer, "engine": engine, "target": config.target}
    if config.noarch:
        pairs["noarch"] = "true"
    if config.binaries != "build":
        pairs["binaries"] = config.binaries
    if config.channels:
        pairs["channels"] = ",".join(config.channels)
    if config.channel_url:
        pairs["channel-url"] = config.channel_url
    if config.target == "anaconda":
        pairs.update(owner=config.owner, labels=",".join(config.labels))
    else:
        pairs.update({"quetz-url": config.quetz_url, "channel": config.channel})
    return [f"{key}={value}" for key, value in pairs.items()]


def _command(words: Iterable[str]) -> str:
    return " ".join(shlex.quote(word) for word in words)


def _secret_env(config: Config) -> dict[str, str]:
    """Only a step's env carries the token, as a secrets reference: never a command line."""
    name = SECRETS[config.target]
    env = {name: f"${{{{ secrets.{name} }}}}"}
    if config.target == "anaconda":
        env["ANACONDA_TELEMETRY_ENABLED"] = "false"
    return env


def _checkout() -> dict[str, Any]:
    # The job needs no git credentials after checkout: none are left in .git/config.
    return {"name": "checkout", "uses": CHECKOUT, "with": {"persist-credentials": False}}


def _setup(engine: str) -> list[dict[str, Any]]:
    """The tool's Python; with engine=conda also conda and conda-build on PATH (miniforge)."""
    if engine != "conda":
        return [{"name": "python", "uses": SETUP_PYTHON, "with": {"python-version": TOOL_PYTHON}}]
    return [
        {"name": "conda", "uses": SETUP_MINICONDA,
         "with": {"miniforge-version": "latest", "python-version": TOOL_PYTHON,
                  "activate-environment": "release", "conda-remove-defaults": "true"}},
        {"name": "conda-build", "run": "conda install --yes conda-build"},
    ]


def _shell(engine: str) -> str:
    """bash on every runner (Git Bash on Windows); a login shell activates the conda env."""
    return "bash -el {0}" if engine == "conda" else "bash"


def _job(config: Config, engine: str, job: Job) -> dict[str, Any]:
    words = ["./dev", "release", f"platforms={','.join(job.platforms)}", *settings(config, engine)]
    steps = [
        _checkout(), *_setup(engine),
        {"name": "release", "run": _command(words), "env": _secret_env(config)},
        {"name": "manifest", "uses": UPLOAD_ARTIFACT,
         "with": {"name": job.id, "path": "build/release.json\nbuild/stamps/\n",
                  "if-no-files-found": "error", "include-hidden-files": False}},
    ]
    return {"name": f"{job.subdir} ({job.runner})", "runs-on": job.runner, "environment": ENVIRONMENT,
            "timeout-minutes": 60,
            "defaults": {"run": {"shell": _shell(engine)}}, "steps": steps}


def _verify(config: Config, engine: str, built: Sequence[Job]) -> dict[str, Any]:
    folders = [f"{MANIFESTS}/{job.id}" for job in built]
    words = ["./dev", "merge-verify", *folders, *settings(config, engine)]
    steps = [
        _checkout(), *_setup("embedded"),
        {"name": "manifests", "uses": DOWNLOAD_ARTIFACT, "with": {"pattern": "release-*", "path": MANIFESTS}},
        {"name": "merge and verify", "run": _command(words), "env": _secret_env(config)},
        {"name": "release.json", "uses": UPLOAD_ARTIFACT,
         "with": {"name": "release", "path": "build/release.json", "if-no-files-found": "error"}},
    ]
    return {"name": "verify", "needs": [job.id for job in built], "runs-on": "ubuntu-latest", "environment": ENVIRONMENT,
            "timeout-minutes": 30, "defaults": {"run": {"shell": "bash"}}, "steps": steps}


def workflow(config: Config, engine: str) -> dict[str, Any]:
    """The whole workflow as data: triggers, least permissions, one release at a time per ref."""
    built = jobs(config, engine)
    job_map = {job.id: _job(config, engine, job) for job in built}
    job_map["verify"] = _verify(config, engine, built)
    return {
        "name": f"conda release {config.package}",
        "on": {"push": {"tags": ["*"]}, "workflow_dispatch": {}},
        "permissions": {"contents": "read"},
        # Never cancel a release half-published; a second one for the same ref waits.
        "concurrency": {"group": "conda-release-${{ github.ref }}", "cancel-in-progress": False},
        "jobs": job_map,
    }


def header(command: str) -> str:
    return (f"# Generated by `{command}` (conda-release-dag, tasks/ci.py) from recipe/release.toml\n"
            "# and the settings on that command line. Do not edit: change the settings and run it again.\n")


def render(data: dict[str, Any], command: str) -> str:
    """YAML in the data's own (fixed) order, block style, no line wrapping: same data, same bytes."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.sort_base_mapping_type_on_output = False
    yaml.width = 4096
    out = io.StringIO()
    yaml.dump(data, out)
    return header(command) + out.getvalue()


def command_line(overrides: dict[str, str], output: str, default: str) -> str:
    """The command that regenerates the file: its settings sorted, so the order typed does not matter."""
    words = ["doit", "ci", *(["--output", output] if output != default else []),
             *(f"{key}={value}" for key, value in sorted(overrides.items()))]
    return _command(words)


def generate(config: Config, overrides: dict[str, str], output: str) -> None:
    """The `ci` task's action: write the workflow at output (relative to the project)."""
    default = P.WORKFLOW.relative_to(P.ROOT).as_posix()
    target = Path(output) if Path(output).is_absolute() else P.ROOT / output
    engine = ci_engine(config.engine)
    text = render(workflow(config, engine), command_line(overrides, output, default))
    fsio.write_text(target, text)
    count = len(jobs(config, engine))
    print(f"wrote {target}: {count} release job{'s' * (count != 1)} and verify")


# -- the verify job: merge every job's release.json, then ask the target ------------------------


_SHARED = ("package", "version", "target", "owner", "labels", "channels")


def merge(manifests: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One release.json from each job's: the same file recorded twice with one sha256 is one entry
    (a rerun, or two jobs publishing a noarch file); with two sha256s it is a UserError."""
    if not manifests:
        raise UserError("no release.json found: give the folders the jobs' artifacts were downloaded to")
    first = manifests[0]
    for other in manifests[1:]:
        for key in _SHARED:
            if other.get(key) != first.get(key):
                raise UserError(f"the jobs' manifests disagree on {key} ({first.get(key)!r} and "
                                f"{other.get(key)!r}): regenerate the workflow with `doit ci` and rerun it")
    files: dict[str, dict[str, Any]] = {}
    for manifest in manifests:
        for entry in manifest["files"]:
            key = f"{entry['subdir']}/{entry['file']}"
            seen = files.setdefault(key, entry)
            if seen["sha256"] != entry["sha256"]:
                raise UserError(f"{key} was published by two jobs with sha256 {seen['sha256']} and "
                                f"{entry['sha256']}: one name, two contents; bump build-number and release again")
    merged = {key: first.get(key) for key in _SHARED}
    merged["recipe"] = next((m.get("recipe") for m in manifests if m.get("recipe")), None)
    merged["files"] = [files[key] for key in sorted(files)]
    return merged


def read_manifests(folders: Sequence[Path]) -> list[dict[str, Any]]:
    """Each folder's release.json (upload-artifact keeps the build/ layout, or drops its prefix)."""
    found = []
    for folder in folders:
        candidates = [folder / "release.json", folder / "build" / "release.json"]
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            raise UserError(f"{folder} holds no release.json: did its job upload its manifest artifact?")
        try:
            found.append(json.loads(path.read_text(encoding="utf-8")))
        except ValueError as err:
            raise UserError(f"{path} is not JSON ({err}): rerun the job that made it") from None
    return found


def verify(config: Config, merged: dict[str, Any]) -> list[str]:
    """The files the target does not hold with the recorded sha256, as `subdir/file (why)`."""
    from . import upload

    wrong = []
    for entry in merged["files"]:
        artifact = P.Artifact(entry["subdir"], entry["file"], Path(entry["file"]), None)
        held = upload.held(config, artifact)
        if held != entry["sha256"]:
            wrong.append(f"{artifact.key} ({'missing' if held is None else 'sha256 ' + held[:12]})")
    return wrong


def merge_verify(argv: Sequence[str]) -> None:
    """`merge-verify DIR… NAME=VALUE…`: write build/release.json from every job's, then check it."""
    from .config import load

    folders = [Path(arg) for arg in argv if "=" not in arg]
    overrides = dict(arg.split("=", 1) for arg in argv if "=" in arg)
    config = load(P.ROOT, overrides)
    if config.target == "local":
        raise UserError("merge-verify asks a server: give target=anaconda or target=quetz, as the jobs had")
    merged = merge(read_manifests(folders))
    if (merged["package"], merged["version"]) != (config.package, config.version):
        raise UserError(f"the manifests are of {merged['package']} {merged['version']}, the settings of "
                        f"{config.package} {config.version}: give the jobs' settings")
    fsio.write_json(P.paths(config).manifest, merged)
    wrong = verify(config, merged)
    if wrong:
        raise UserError(f"{config.target} does not hold {len(wrong)} of {len(merged['files'])} files as "
                        f"recorded: {', '.join(wrong)}; rerun the jobs that published them")
    print(f"verified {len(merged['files'])} files from {len(folders)} jobs on {config.target}: "
          f"wrote {P.paths(config).manifest}")


def main(argv: Sequence[str]) -> int:
    if not argv or argv[0] != "merge-verify":
        print("usage: python -m tasks.ci merge-verify DIR... [NAME=VALUE...]", file=sys.stderr)
        return 2
    try:
        merge_verify(argv[1:])
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
