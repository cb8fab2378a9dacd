"""Configuration: defaults reproduce the walkthrough, overrides are typed, bad values are one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks import subdirs
from tasks.config import load
from tasks.errors import UserError


def test_defaults_reproduce_the_walkthrough(tmp_path):
    config = load(tmp_path, {})
    assert (config.package, config.version, config.pythons) == ("btrdb", "5.2.2", ("3.6", "3.7"))
    assert config.platforms == subdirs.WALKTHROUGH and len(config.platforms) == 9
    assert (config.owner, config.maintainer, config.format, config.target) == ("pingthings", "looselycoupled", "tar.bz2", "local")
    assert config.build_dir == tmp_path / "build"


def test_shipped_release_file_keeps_the_walkthrough_defaults():
    root = Path(__file__).resolve().parent.parent
    config = load(root, {})
    assert (config.package, config.version, config.owner) == ("btrdb", "5.2.2", "pingthings")
    assert config.sha256["btrdb-5.2.2.tar.gz"].startswith("7a282ec3")


def test_command_line_overrides_are_coerced(tmp_path):
    config = load(tmp_path, {"package": "six", "version": "1.16.0", "pythons": "3.11, 3.12",
                             "platforms": "win-64,osx-arm64", "build-number": "3", "noarch": "yes",
                             "label": "main,dev", "build-dir": "out"})
    assert config.pythons == ("3.11", "3.12") and config.platforms == ("win-64", "osx-arm64")
    assert config.build_number == 3 and config.noarch is True and config.labels == ("main", "dev")
    assert config.build_dir == tmp_path / "out"


def test_all_means_thirteen_platforms(tmp_path):
    assert load(tmp_path, {"platforms": "all"}).platforms == subdirs.ALL and len(subdirs.ALL) == 13


def test_release_file_is_read(tmp_path):
    (tmp_path / "recipe").mkdir()
    (tmp_path / "recipe" / "release.toml").write_text('[release]\npackage = "six"\npythons = ["3.12"]\n')
    config = load(tmp_path, {"version": "1.16.0"})
    assert (config.package, config.version, config.pythons) == ("six", "1.16.0", ("3.12",))


@pytest.mark.parametrize("overrides, fragment", [
    ({"pythons": "3.6,36"}, "malformed"),
    ({"pythons": "2.7"}, "not supported"),
    ({"pythons": "3.99"}, "not supported"),
    ({"platforms": "linux-64,amiga-68k"}, "unknown platform 'amiga-68k'"),
    ({"format": "zip"}, "format='zip' is not known"),
    ({"target": "s3"}, "target='s3'"),
    ({"build-number": "x"}, "not a whole number"),
    ({"build-number": "-1"}, "negative"),
    ({"noarch": "maybe"}, "not true or false"),
    ({"package": "Bad Name"}, "not a valid package name"),
    ({"version": "five"}, "not a version number"),
    ({"pythno": "3.6"}, "unknown setting 'pythno'"),
    ({"source": "/does/not/exist"}, "does not exist"),
    ({"target": "quetz"}, "needs quetz-url"),
    ({"owner": "bad owner"}, "owner="),
])
def test_bad_values_name_the_fix(tmp_path, overrides, fragment):
    with pytest.raises(UserError, match=None) as caught:
        load(tmp_path, overrides)
    message = str(caught.value)
    assert fragment in message and "\n" not in message


def test_malformed_release_file(tmp_path):
    (tmp_path / "recipe").mkdir()
    (tmp_path / "recipe" / "release.toml").write_text("package = [unclosed\n")
    with pytest.raises(UserError, match="not valid TOML"):
        load(tmp_path, {})


def test_channels_default_to_the_users_conda_configuration_and_keep_their_order(tmp_path):
    assert load(tmp_path, {}).channels == ()  # nothing passed: .condarc decides, as in the walkthrough
    config = load(tmp_path, {"channels": "my-org/label/dev, conda-forge,https://conda.example/private"})
    assert config.channels == ("my-org/label/dev", "conda-forge", "https://conda.example/private")
    with pytest.raises(UserError) as err:
        load(tmp_path, {"channels": ["conda forge"]})
    assert "is not a conda channel" in str(err.value)


def test_verify_installs_from_the_channels_when_given_else_offline_stand_ins(tmp_path):
    from tasks.verify import install_channels

    published = (tmp_path / "build" / "channel").as_uri()
    made = []
    stubs = lambda: made.append(1) or tmp_path / "stubs"  # noqa: E731
    assert install_channels(load(tmp_path, {}), stubs) == [published, (tmp_path / "stubs").as_uri()]
    assert install_channels(load(tmp_path, {"channels": "conda-forge,defaults"}), stubs) == \
        [published, "conda-forge", "defaults"]
    assert made == [1]  # no stand-ins made when real channels are named


def test_status_options_given_as_settings_name_the_task_option(tmp_path):
    with pytest.raises(UserError, match=r"^remote= is not a setting: give it to the status task, `doit status --remote`$"):
        load(tmp_path, {"remote": "true"})
