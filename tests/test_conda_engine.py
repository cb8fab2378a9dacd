"""The conda engine, tested by contract: conda and conda-build cannot be installed here.

- `test_contract_*`: the exact command lines the engine runs, and its parsing of what the tools
  print, written from conda-build's documentation, source (cli/main_build.py, api.py
  get_output_file_paths, convert.py, skeletons/pypi.py) and issues #1731, #2173, #2189, #2306,
  #5567.  No real conda ran to produce any sample below.
- `test_fake_*`: the actions driven end to end through tests/fake_conda, stand-ins on PATH that
  behave as the documented tools do (they are not conda).
- `test_engines_*`: both engines name the same artifacts for the same settings.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
import tarfile
from pathlib import Path

import pytest
from rattler.package import IndexJson

import _convert_helpers as h
from fake_conda import install as install_fakes
from tasks import conda_engine as CE
from tasks.archive import read_package
from tasks import plan
from tasks import project as P
from tasks import subdirs
from tasks.config import Config
from tasks.errors import UserError
from tasks.runner import Result, run

NATIVE = subdirs.native()
CROOT = Path("/home/me/rel/build/conda-bld")


def one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message and message.strip() == message
    return message


class Recording:
    """A runner that answers from a table (argv tuple -> Result fields) and records each call."""

    def __init__(self, answers: dict[tuple[str, ...], tuple[int, str, str] | Exception] | None = None):
        self.answers, self.calls = answers or {}, []

    def __call__(self, argv, *, cwd=None, env=None) -> Result:
        self.calls.append(list(argv))
        answer = self.answers.get(tuple(argv), (0, "", ""))
        if isinstance(answer, Exception):
            raise answer
        return Result(tuple(argv), *answer)


# --- contract: command lines ------------------------------------------------------------------


def test_contract_skeleton_argv():
    assert CE.skeleton_argv("btrdb", "5.2.2", "/tmp/sk") == [
        "conda", "skeleton", "pypi", "btrdb", "--version", "5.2.2", "--output-dir", "/tmp/sk"]


def test_contract_build_argv_for_the_walkthrough_build():
    assert CE.build_argv(Path("/r/recipe"), "3.6", CROOT) == [
        "conda-build", "/r/recipe", "--python", "3.6", "--croot", str(CROOT),
        "--no-anaconda-upload", "--package-format", "tar.bz2"]


def test_contract_build_argv_output_folder_output_and_format():
    assert CE.build_argv("/r", "3.12", "/c", output_folder="/o", output=True, package_format="conda") == [
        "conda-build", "/r", "--python", "3.12", "--croot", "/c", "--no-anaconda-upload",
        "--package-format", "conda", "--output-folder", "/o", "--output"]


def test_contract_build_argv_noarch_names_no_python():
    assert "--python" not in CE.build_argv("/r", None, "/c")


def test_contract_convert_argv_follows_the_force_setting():
    assert CE.convert_argv(Path("/b/osx-64/btrdb-5.2.2-py36_0.tar.bz2"), ["win-64"], "/pb") == [
        "conda", "convert", "-p", "win-64", "-o", "/pb", "/b/osx-64/btrdb-5.2.2-py36_0.tar.bz2"]
    assert CE.convert_argv("/p.tar.bz2", ["linux-64"], "/pb", force=True) == [
        "conda", "convert", "-f", "-p", "linux-64", "-o", "/pb", "/p.tar.bz2"]


def test_contract_convert_argv_names_every_platform_once():  # -p is an append option of conda convert
    assert CE.convert_argv("/p.tar.bz2", ["win-64", "linux-aarch64", "osx-arm64"], "/pb") == [
        "conda", "convert", "-p", "win-64", "-p", "linux-aarch64", "-p", "osx-arm64", "-o", "/pb", "/p.tar.bz2"]


def test_contract_convert_writes_out_subdir_and_the_same_file_name():
    package = Path("/b/conda-bld/osx-64/btrdb-5.2.2-py36_0.tar.bz2")
    assert CE.convert_destination(package, "win-32", Path("/pb")) == Path("/pb/win-32/btrdb-5.2.2-py36_0.tar.bz2")


def test_contract_create_argv_takes_the_users_channels_unless_told():
    # The walkthrough's install: our channel first, python and dependencies as the user's .condarc says.
    assert CE.create_argv("/tmp/env", Path("/rel/build/channel"), "btrdb", "5.2.2", "3.7") == [
        "conda", "create", "--yes", "--quiet", "-p", "/tmp/env",
        "-c", "file:///rel/build/channel", "btrdb=5.2.2", "python=3.7"]
    assert CE.create_argv("/e", Path("/c"), "btrdb", "5.2.2", None)[-1] == "btrdb=5.2.2"
    # channels=conda-forge,defaults: those, in order, and nothing from .condarc.
    assert CE.create_argv("/e", Path("/c"), "btrdb", "5.2.2", "3.7", ("conda-forge", "defaults")) == [
        "conda", "create", "--yes", "--quiet", "-p", "/e", "--override-channels",
        "-c", "file:///c", "-c", "conda-forge", "-c", "defaults", "btrdb=5.2.2", "python=3.7"]


def test_contract_build_argv_channels_override_the_users_only_when_given():
    assert "--override-channels" not in CE.build_argv("/r", "3.6", "/c") and "-c" not in CE.build_argv("/r", "3.6", "/c")
    assert CE.build_argv("/r", "3.6", "/c", channels=("conda-forge", "https://my.host/private"))[-5:] == [
        "-c", "conda-forge", "-c", "https://my.host/private", "--override-channels"]


def test_contract_no_shell_no_token_no_global_configuration():
    argvs = [
        CE.skeleton_argv("btrdb", "5.2.2", "/t"),
        CE.build_argv("/r", "3.6", "/c", "/o", True),
        CE.convert_argv("/p.tar.bz2", ["win-64"], "/o", force=True),
        CE.create_argv("/e", Path("/c"), "btrdb", "5.2.2", "3.6"),
    ]
    for argv in argvs:
        assert isinstance(argv, list) and all(isinstance(arg, str) and arg for arg in argv)
        assert argv[0] in ("conda", "conda-build") and argv[1:2] != ["config"]
        assert not {"--token", "-t", "--set", "--user"} & set(argv)
        assert not any("anaconda_upload" in arg or "token" in arg.lower() for arg in argv)
    assert "--no-anaconda-upload" in argvs[1]  # the per-run form of `conda config --set anaconda_upload no`


# --- contract: conda-build --output -----------------------------------------------------------

WANT = "btrdb-5.2.2-py36_0.tar.bz2"


def test_contract_output_one_path():
    # main_build.output_action: print("\n".join(sorted(api.get_output_file_paths(...))))
    assert CE.parse_output(f"{CROOT}/osx-64/{WANT}\n", WANT) == CROOT / "osx-64" / WANT


def test_contract_output_with_log_lines_mixed_in():
    # conda-build 3.0.x printed its logging before the path (#2173, #2189).
    said = ("No numpy version specified in conda_build_config.yaml.  Falling back to default numpy value of 1.11\n"
            "WARNING:conda_build.metadata:No numpy version specified in conda_build_config.yaml.\n"
            "Adding in variants from internal_defaults\n"
            "INFO:conda_build.variants:Adding in variants from internal_defaults\n"
            "Attempting to finalize metadata for btrdb\n"
            "INFO conda_build.metadata:finalize_outputs_pass(607): Attempting to finalize metadata for btrdb\n"
            f"{CROOT}/linux-64/{WANT}\n")
    assert CE.parse_output(said, WANT) == CROOT / "linux-64" / WANT


def test_contract_output_several_variants_sorted():
    # A conda_build_config.yaml python matrix: one path per variant, sorted.
    said = "".join(f"{CROOT}/linux-64/btrdb-5.2.2-py3{minor}_0.tar.bz2\n" for minor in (5, 6, 7))
    assert CE.parse_output(said, WANT) == CROOT / "linux-64" / WANT


def test_contract_output_under_another_folder_than_asked():
    # #2306: --output named the croot (or a .condarc root-dir), not --output-folder: the path is
    # taken as printed; build() then checks the file there and copies it to the plan's target.
    said = f"/Users/me/anaconda3/conda-bld/osx-64/{WANT}\n"
    assert CE.parse_output(said, WANT) == Path(f"/Users/me/anaconda3/conda-bld/osx-64/{WANT}")


def test_contract_output_windows_paths():
    said = f"C:\\Users\\me\\rel\\build\\conda-bld\\win-64\\{WANT}\r\n"
    assert CE.parse_output(said, WANT) == Path(f"C:\\Users\\me\\rel\\build\\conda-bld\\win-64\\{WANT}")


def test_contract_output_with_a_variant_hash_is_refused():
    # #5567: the build string carries a hash the plan's pyXY_N lacks.
    said = f"{CROOT}/linux-64/btrdb-5.2.2-py36h5b46470_0.tar.bz2\n"
    with pytest.raises(UserError) as err:
        CE.parse_output(said, WANT)
    assert "btrdb-5.2.2-py36h5b46470_0.tar.bz2" in one_line(err) and "build/string" in str(err.value)


def test_contract_output_ignoring_python_is_refused():
    # #2189: --python was ignored and the default Python's name printed.
    with pytest.raises(UserError) as err:
        CE.parse_output(f"{CROOT}/linux-64/btrdb-5.2.2-py27_0.tar.bz2\n", WANT)
    assert "py27_0" in one_line(err) and "#2189" in str(err.value)


def test_contract_output_in_another_format_is_refused():
    # conda-build >= 25.1 writes .conda unless told --package-format.
    with pytest.raises(UserError) as err:
        CE.parse_output(f"{CROOT}/linux-64/btrdb-5.2.2-py36_0.conda\n", WANT)
    assert "format" in one_line(err)


def test_contract_output_skipped_configuration():
    # utils.get_skip_message, printed by get_output_file_paths for a skipped variant.
    said = "Skipped: btrdb from /r/recipe defines build/skip for this configuration ({'python': '3.6'}).\n"
    with pytest.raises(UserError) as err:
        CE.parse_output(said, WANT)
    assert "skips" in one_line(err)


def test_contract_output_without_any_path():
    with pytest.raises(UserError) as err:
        CE.parse_output("Error: no recipe found in /r/recipe\n", WANT)
    assert "Error: no recipe found" in one_line(err)


# --- contract: engine choice and toolchain ----------------------------------------------------


def which_with(*found: str):
    return lambda name: f"/opt/conda/bin/{name}" if name in found else None


def test_contract_resolve_auto_follows_conda_build_on_path():
    assert CE.resolve("auto", which_with("conda", "conda-build")) == "conda"
    assert CE.resolve("auto", which_with("conda")) == "embedded"
    assert CE.resolve("embedded", which_with("conda", "conda-build")) == "embedded"
    assert CE.resolve("conda", which_with("conda-build")) == "conda"


def test_contract_engine_conda_without_conda_build_is_one_line():
    with pytest.raises(UserError) as err:
        CE.resolve("conda", which_with())
    assert one_line(err) == ("engine=conda needs conda-build on PATH: conda install conda-build "
                             "anaconda-client, or use engine=embedded")


def test_contract_toolchain_reads_versions_from_either_stream(tmp_path):
    runner = Recording({("conda", "--version"): (0, "", "conda 4.6.14\n"),  # old conda: stderr
                        ("conda-build", "--version"): (0, "conda-build 24.11.2\n", "")})
    config = Config(engine="conda", build_dir=tmp_path)
    assert CE.toolchain(config, runner, which_with("conda", "conda-build")) == {
        "engine": "conda", "conda": "4.6.14", "conda-build": "24.11.2"}


def test_contract_toolchain_reads_anaconda_client_old_and_new(tmp_path):
    config = Config(engine="conda", target="anaconda", build_dir=tmp_path)
    base = {("conda", "--version"): (0, "conda 25.1.1", ""),
            ("conda-build", "--version"): (0, "conda-build 25.1.2", "")}
    old = Recording({**base, ("anaconda", "--version"): (0, "anaconda Command line client (version 1.7.2)\n", "")})
    assert CE.toolchain(config, old, which_with("conda-build"))["anaconda-client"] == "1.7.2"
    table = ("┏━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━┓\n┃ Package           ┃ Version ┃\n"
             "│ anaconda-cli-base │ 0.9.1   │\n│ anaconda-client   │ 1.16.0  │\n")
    new = Recording({**base, ("anaconda", "--version"): (2, "", "No such option: --version"),
                     ("anaconda", "versions"): (0, table, "")})
    assert CE.toolchain(config, new, which_with("conda-build"))["anaconda-client"] == "1.16.0"


def test_contract_toolchain_refuses_conda_build_without_package_format(tmp_path):
    runner = Recording({("conda", "--version"): (0, "conda 4.14.0", ""),
                        ("conda-build", "--version"): (0, "conda-build 3.28.4", "")})
    with pytest.raises(UserError) as err:
        CE.toolchain(Config(engine="conda", build_dir=tmp_path), runner, which_with("conda-build"))
    assert "conda-build 3.28.4 predates --package-format" in one_line(err)


def test_contract_toolchain_names_the_setting_that_needs_conda(tmp_path):
    config = Config(engine="auto", skeleton="conda", build_dir=tmp_path)
    with pytest.raises(UserError) as err:
        CE.toolchain(config, Recording(), which_with())
    assert one_line(err) == ("skeleton=conda needs conda-build on PATH: conda install conda-build "
                             "anaconda-client, or use skeleton=grayskull")


def test_contract_toolchain_of_the_embedded_engine_runs_nothing(tmp_path):
    runner = Recording()
    assert CE.toolchain(Config(engine="auto", build_dir=tmp_path), runner, which_with()) == {"engine": "embedded"}
    assert runner.calls == []


def test_contract_a_missing_tool_is_one_line(tmp_path):
    runner = Recording({("conda", "--version"): FileNotFoundError(2, "No such file or directory")})
    with pytest.raises(UserError) as err:
        CE.toolchain(Config(engine="conda", build_dir=tmp_path), runner, which_with("conda-build"))
    assert one_line(err) == "cannot run conda (No such file or directory): conda install conda-build anaconda-client"


class ConvertAt:
    """A runner standing in for `conda convert`: writes each -p platform's package into -o with the
    given archive time and payload, as conda convert re-packs with the files' current times."""

    def __init__(self) -> None:
        self.mtime, self.payload = 1_000, b"same\n"

    def __call__(self, argv, *, cwd=None, env=None) -> Result:
        out, source = Path(argv[argv.index("-o") + 1]), Path(argv[-1])
        for subdir in [argv[i + 1] for i, arg in enumerate(argv) if arg == "-p"]:
            (out / subdir).mkdir(parents=True, exist_ok=True)
            entry = h.file_info("site-packages/demo.py", self.payload)
            entry.mtime = self.mtime
            h.tar_package(out / subdir / source.name, [(entry, self.payload)], {"subdir": subdir})
        return Result(tuple(argv), 0, "", "")


def test_contract_reconverting_keeps_outputs_holding_the_same_files(tmp_path):
    source = tmp_path / "conda-bld" / "linux-64" / "demo-1.0-py36_0.tar.bz2"
    source.parent.mkdir(parents=True)
    source.write_bytes(b"read by conda convert only")
    outputs = [(subdir, tmp_path / "pb" / subdir / source.name) for subdir in ("win-64", "osx-arm64")]
    runner = ConvertAt()
    CE.convert(source, outputs[:1], runner)
    first = outputs[0][1].read_bytes()
    runner.mtime = 2_000  # a later run of conda convert: same files, other archive bytes
    CE.convert(source, outputs, runner)  # a platform added: the build's conversion runs again
    assert outputs[0][1].read_bytes() == first and outputs[1][1].is_file()
    runner.payload = b"changed\n"  # a changed build: its conversions are replaced
    CE.convert(source, outputs, runner)
    assert all(b"changed" in tarfile.open(path).extractfile("site-packages/demo.py").read() for _, path in outputs)
    assert sorted(p.name for p in (tmp_path / "pb").iterdir()) == ["osx-arm64", "win-64"]  # no temporary left


def test_contract_convert_refuses_conda_format_before_running_anything(tmp_path):
    runner = Recording()
    with pytest.raises(UserError) as err:
        CE.convert(tmp_path / "btrdb-5.2.2-py36_0.conda", [("win-64", tmp_path / "win-64" / "out.conda")], runner)
    assert "conda convert reads only .tar.bz2" in one_line(err) and "converter=in-house" in str(err.value)
    assert runner.calls == []


# --- the fakes: the actions end to end --------------------------------------------------------

RECIPE = """{{% set name = "{name}" %}}
{{% set version = "{version}" %}}

package:
  name: "{{{{ name|lower }}}}"
  version: "{{{{ version }}}}"

source:
  path: {source}

build:
  number: {number}
{noarch}  script: "{{{{ PYTHON }}}} -m pip install . -vv"

requirements:
  host:
    - pip
    - python
  run:
    - python
    - attrs >=17.4

test:
  imports:
{imports}
"""


def write_recipe(config: Config, source: Path, imports=("crdagtiny",)) -> str:
    """A classic recipe for the tiny package, where the DAG's `recipe` task puts it."""
    text = RECIPE.format(name=config.package, version=config.version, source=source, number=config.build_number,
                         noarch="  noarch: python\n" if config.noarch else "",
                         imports="".join(f"    - {module}\n" for module in imports))
    P.paths(config).recipe_dir.mkdir(parents=True, exist_ok=True)
    P.paths(config).meta.write_text(text, encoding="utf-8")
    return text


@pytest.fixture
def fakes(tmp_path, monkeypatch, tiny_sdist):
    """The stand-ins on PATH; returns a function giving the calls logged so far."""
    log = tmp_path / "fake-conda.log"
    for name, value in install_fakes(tmp_path / "fake-bin", log).items():
        monkeypatch.setenv(name, value)
    cache = tmp_path / "fake-pypi"
    cache.mkdir()
    shutil.copy(tiny_sdist, cache / tiny_sdist.name)
    monkeypatch.setenv("FAKE_CONDA_SRC_CACHE", str(cache))
    return lambda: [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.fixture
def tiny(tmp_path, tiny_sdist) -> tuple[Config, Path]:
    """Settings for the tiny package and its unpacked source tree, as the `source` task leaves it."""
    config = Config(package="crdagtiny", version="1.0.0", pythons=("3.6",), platforms=(NATIVE, "win-64"),
                    build_dir=tmp_path / "build", engine="conda")
    tree = P.paths(config).source_tree
    with tarfile.open(tiny_sdist) as archive:
        archive.extractall(tree.parent, filter="data")
    (tree.parent / "crdagtiny-1.0.0").rename(tree)
    return config, tree


def test_fake_toolchain_answers_as_conda(fakes, tmp_path):
    assert CE.toolchain(Config(engine="auto", build_dir=tmp_path)) == {
        "engine": "conda", "conda": "25.1.1", "conda-build": "25.1.2"}
    assert fakes() == [["conda", "--version"], ["conda-build", "--version"]]


def test_fake_skeleton_moves_meta_yaml_into_place_and_writes_nothing_outside_build(fakes, tiny, tmp_path,
                                                                                   monkeypatch):
    config, _ = tiny
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))  # where conda skeleton keeps its src_cache by default
    monkeypatch.delenv("CONDA_BLD_PATH", raising=False)
    CE.skeleton(config)
    text = P.paths(config).skeleton.read_text()
    assert text.startswith('{% set name = "crdagtiny" %}') and "sha256:" in text
    (call,) = fakes()
    output_dir = Path(call[call.index("--output-dir") + 1])
    assert call == CE.skeleton_argv("crdagtiny", "1.0.0", output_dir, "3.6", call[-1])
    assert call[-1] == CE.pypi_api_url(CE.pip_index_url())  # the index pip is configured for
    assert P.paths(config).work in output_dir.parents and not output_dir.exists()  # temp folder removed
    assert not home.exists()


def test_contract_skeleton_argv_names_python_and_index():
    assert CE.skeleton_argv("btrdb", "5.2.2", "/t", "3.6", "https://mirror.example/pypi/")[-4:] == [
        "--python-version", "3.6", "--pypi-url", "https://mirror.example/pypi/"]


def test_contract_pip_index_url_from_pip_config_else_pips_default():
    listed = ("global.index-url='https://a.example/simple'\n"
              ":env:.index-url='https://env.example/root/simple/'\n")
    runner = Recording({tuple(CE.pip("config", "list")): (0, listed, "")})
    assert CE.pip_index_url(runner) == "https://env.example/root/simple/"  # the variable wins, as in pip
    assert CE.pypi_api_url("https://env.example/root/simple/") == "https://env.example/root/pypi/"
    default = Recording({tuple(CE.pip("config", "list")): (0, "", "")})
    default.answers[(CE.sys.executable, "-c", CE._PIP_DEFAULT_INDEX)] = (0, "https://index.example/simple\n", "")
    assert CE.pip_index_url(default) == "https://index.example/simple"


def test_fake_skeleton_without_the_release_is_one_line(fakes, tiny):
    config = dataclasses.replace(tiny[0], version="9.9.9")
    with pytest.raises(UserError) as err:
        CE.skeleton(config)
    assert "Version 9.9.9 of crdagtiny is not available on PyPI" in one_line(err)
    assert not P.paths(config).skeleton.exists()


def built(config: Config, python: str = "3.6") -> P.Artifact:
    """Build through the conda engine as the `build:<python>` task would, return the artifact."""
    (artifact,) = [b.artifact for b in plan.make(config, NATIVE).builds if b.python == python]
    CE.build(config, python, artifact.subdir, artifact.path)
    return artifact


def test_fake_build_renders_once_and_reads_the_path_from_its_own_output(fakes, tiny):
    config, tree = tiny
    write_recipe(config, tree)
    artifact = built(config)
    index = IndexJson.from_package_archive(artifact.path)
    assert (index.name.normalized, str(index.version), index.subdir) == ("crdagtiny", "1.0.0", NATIVE)
    assert "python >=3.6,<3.7.0a0" in index.depends
    argv = CE.build_argv(P.paths(config).recipe_dir, "3.6", P.paths(config).conda_bld)
    # One conda-build run, so one full render (a separate --output was a second one).
    assert fakes() == [argv, ["render", str(P.paths(config).recipe_dir), "3.6"]]


def test_contract_build_output_names_the_package_written():
    # conda-build's build run ends with the test and --no-anaconda-upload's hint, both naming the path.
    said = (f"BUILD START: ['{WANT}']\n...\nTEST END: {CROOT}/linux-64/{WANT}\n"
            "# Automatic uploading is disabled\n# If you want to upload package(s) to anaconda.org later, type:\n\n"
            f"anaconda upload \\\n    {CROOT}/linux-64/{WANT}\n")
    assert CE.parse_output(said, WANT) == CROOT / "linux-64" / WANT


def test_fake_builds_of_one_recipe_differ_as_conda_builds_do(fakes, tiny):
    """The stand-in is as unreliable as conda-build: build time, .pyc headers, work paths."""
    config, tree = tiny
    write_recipe(config, tree)
    artifact = built(config)
    first = {m.path: m.data for m in read_package(artifact.path)}
    artifact.path.unlink()
    built(config)
    second = {m.path: m.data for m in read_package(artifact.path)}
    assert first.keys() == second.keys()
    differ = {path for path in first if first[path] != second[path]}
    assert "info/index.json" in differ and "info/paths.json" in differ and "info/recipe/meta.yaml" in differ
    assert any(path.endswith(".pyc") for path in differ)
    assert any(path.endswith("direct_url.json") for path in differ) and any(path.endswith("RECORD") for path in differ)


def test_contract_error_line_quotes_the_exception_not_condas_boilerplate(tmp_path):
    said = ("Collecting package metadata: done\n"
            "conda_build.exceptions.DependencyNeedsBuildingError: Unsatisfiable dependencies for platform "
            "linux-64: {'grpcio==1.12.1'}\n\n"
            "# >>>>>>>>>>>>>>>>>>>>>> ERROR REPORT <<<<<<<<<<<<<<<<<<<<<<\n    Traceback ...\n"
            "An unexpected error has occurred. Conda has prepared the above report.\n"
            "If you suspect this error is being caused by a malfunctioning plugin,\n"
            "consider using the --no-plugins option to turn off plugins.\n\n"
            "Example: conda --no-plugins install <package>\n\n"
            "Alternatively, you can set the CONDA_NO_PLUGINS environment variable on the command line.\n\n"
            "Example: CONDA_NO_PLUGINS=true conda install <package>\n")
    config = Config(engine="conda", build_dir=tmp_path / "build")
    runner = Recording({tuple(CE.build_argv(P.paths(config).recipe_dir, "3.6", P.paths(config).conda_bld)):
                        (1, "", said)})
    with pytest.raises(UserError) as err:
        CE.build(config, "3.6", NATIVE, tmp_path / "out.tar.bz2", runner)
    log = P.paths(config).log("conda-build-3.6")
    assert one_line(err) == ("conda-build failed for python 3.6 (conda_build.exceptions.DependencyNeedsBuildingError: "
                             "Unsatisfiable dependencies for platform linux-64: {'grpcio==1.12.1'}; full output in "
                             f"{log}): fix the recipe, then run doit again")
    assert "Example: CONDA_NO_PLUGINS=true" in log.read_text() and not (tmp_path / "out.tar.bz2").exists()


def test_fake_build_copies_from_a_condarc_output_folder(fakes, tiny, tmp_path, monkeypatch):
    config, tree = tiny
    write_recipe(config, tree)
    monkeypatch.setenv("FAKE_CONDA_BLD_OUTPUT_FOLDER", str(tmp_path / "elsewhere"))
    artifact = built(config)
    moved = tmp_path / "elsewhere" / NATIVE / artifact.filename
    assert artifact.path.read_bytes() == moved.read_bytes()


def test_fake_build_failure_is_one_line_with_the_tools_last_line(fakes, tiny):
    config, tree = tiny
    write_recipe(config, tree / "missing")
    with pytest.raises(UserError) as err:
        built(config)
    assert "does not exist" in one_line(err) and "conda-build failed for python 3.6" in str(err.value)


def test_fake_build_for_another_platform_is_refused(fakes, tiny, monkeypatch):
    config, tree = tiny
    write_recipe(config, tree)
    other = "osx-64" if NATIVE != "osx-64" else "linux-64"
    monkeypatch.setenv("FAKE_CONDA_SUBDIR", other)
    with pytest.raises(UserError) as err:
        built(config)
    assert f"conda-build builds for {other}, the plan for {NATIVE}" in one_line(err)
    assert not P.paths(config).conda_bld.joinpath(NATIVE).exists()  # nothing at the plan's target


def test_fake_build_in_conda_format(fakes, tiny):
    config = dataclasses.replace(tiny[0], format="conda")
    write_recipe(config, tiny[1])
    artifact = built(config)
    assert artifact.path.name.endswith(".conda") and IndexJson.from_package_archive(artifact.path).subdir == NATIVE


def test_fake_convert_writes_every_target_atomically(fakes, tiny):
    config, tree = tiny
    config = dataclasses.replace(config, platforms=(NATIVE, "win-64", "osx-arm64"))
    write_recipe(config, tree)
    source = built(config)
    (conversion,) = plan.make(config, NATIVE).conversions
    outputs = [(artifact.subdir, artifact.path) for artifact in conversion.artifacts]
    assert len(outputs) == 2
    CE.convert(source.path, outputs)
    subdirs_asked = [subdir for subdir, _ in outputs]
    assert [IndexJson.from_package_archive(path).subdir for _, path in outputs] == subdirs_asked
    (call,) = [argv for argv in fakes() if argv[1:2] == ["convert"]]
    assert call[:-2] == CE.convert_argv(source.path, subdirs_asked, "X")[:-2] and call[-1] == str(source.path)
    platform_builds = P.paths(config).platform_builds
    assert sorted(platform_builds.rglob("*")) == sorted({*(path for _, path in outputs),
                                                         *(path.parent for _, path in outputs)})  # no temp left


def test_fake_convert_that_writes_nothing_is_refused(fakes, tiny, tmp_path):
    config, tree = tiny
    write_recipe(config, tree)
    source = built(config)
    with pytest.raises(UserError) as err:  # conda convert skips the package's own platform, exit 0
        CE.convert(source.path, [("win-64", tmp_path / "pb" / "win-64" / source.filename),
                                 (NATIVE, tmp_path / "pb" / NATIVE / source.filename)])
    assert f"conda convert wrote no {NATIVE} package" in one_line(err) and "Skipping conversion" in str(err.value)
    assert not (tmp_path / "pb" / "win-64").exists() or not any((tmp_path / "pb" / "win-64").iterdir())


def publish(config: Config, artifact: P.Artifact) -> None:
    """What `upload` does for target=local: the file into build/channel/<subdir>, indexed."""
    import rattler
    import rattler.index

    channel = P.paths(config).channel
    (channel / artifact.subdir).mkdir(parents=True, exist_ok=True)
    (channel / "noarch").mkdir(exist_ok=True)
    shutil.copy(artifact.path, channel / artifact.subdir / artifact.filename)
    for subdir in (artifact.subdir, "noarch"):
        asyncio.run(rattler.index.index_fs(channel, target_platform=rattler.Subdir(subdir)))


def test_fake_install_check_creates_an_env_from_the_channel(fakes, tiny):
    config, tree = tiny
    meta_text = write_recipe(config, tree)
    artifact = built(config)
    publish(config, artifact)
    result = CE.install_check(config, [artifact], NATIVE, meta_text)
    assert result == [{"file": artifact.key, "installed": True, "imports": {"crdagtiny": "ok"}}]
    create = [call for call in fakes() if call[:2] == ["conda", "create"]]
    assert len(create) == 1
    expected = CE.create_argv("PREFIX", P.paths(config).channel, "crdagtiny", "1.0.0", "3.6")
    assert create[0][:5] == expected[:5] and create[0][6:] == expected[6:]


def test_fake_install_check_import_failure_is_one_line(fakes, tiny):
    config, tree = tiny
    meta_text = write_recipe(config, tree, imports=("crdagtiny", "crdagtiny.missing"))
    artifact = built(config)
    publish(config, artifact)
    with pytest.raises(UserError) as err:
        CE.install_check(config, [artifact], NATIVE, meta_text)
    assert one_line(err).startswith("import crdagtiny.missing fails in the conda environment (ModuleNotFoundError")


def test_fake_install_check_unpublished_package_is_one_line(fakes, tiny):
    config, tree = tiny
    meta_text = write_recipe(config, tree)
    artifact = built(config)  # built, never published
    with pytest.raises(UserError) as err:
        CE.install_check(config, [artifact], NATIVE, meta_text)
    assert f"{artifact.key} does not install with conda (PackagesNotFoundError: The following packages are not " \
        "available from current channels:; full output in " in one_line(err)
    assert "- crdagtiny=1.0.0" in P.paths(config).log("conda-create-3.6").read_text()


# --- both engines, same names -----------------------------------------------------------------

CONFIGS = [
    {},
    {"pythons": ("3.7", "3.12"), "build_number": 3},
    {"format": "conda", "pythons": ("3.10",)},
    {"package": "tiny-pkg.x", "version": "2.0.0rc1"},
    {"noarch": True},
]


@pytest.mark.parametrize("settings", CONFIGS, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()) or "defaults")
def test_engines_name_the_same_artifacts(fakes, tiny, settings):
    """The embedded plan's file names (P.filename) are the names conda-build's --output gives."""
    config = dataclasses.replace(tiny[0], **settings)
    write_recipe(config, tiny[1])
    for build in plan.make(config, NATIVE).builds:
        argv = CE.build_argv(P.paths(config).recipe_dir, build.python, P.paths(config).conda_bld,
                             output=True, package_format=config.format)
        said = run(argv)
        assert said.returncode == 0, said.stderr
        assert CE.parse_output(said.stdout, build.artifact.filename) == build.artifact.path
        assert build.artifact.filename == P.filename(config, build.python)


def test_engines_convert_to_the_same_paths(tmp_path):
    """`conda convert -o build/platform-builds` writes exactly the plan's conversion targets."""
    config = Config(build_dir=tmp_path, platforms=tuple(subdirs.ALL))
    result = plan.make(config, "osx-64")
    converted = [(conversion.build, artifact) for conversion in result.conversions for artifact in conversion.artifacts]
    assert len(converted) == 2 * (len(subdirs.ALL) - 1)  # every subdir but the native one
    for build, artifact in converted:
        destination = CE.convert_destination(build.artifact.path, artifact.subdir, P.paths(config).platform_builds)
        assert destination == artifact.path
