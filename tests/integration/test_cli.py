"""The command line itself: --version, --help, errors, --log."""

import datetime
import json
import re

import pytest

from conftest import TOP_SRCDIR, describe, sbxrun, subcommands


def configure_version():
    m = re.search(r"AC_INIT\(\[sbxrun\],\s*\[([^\]]+)\]", (TOP_SRCDIR / "configure.ac").read_text())
    return m.group(1) if m else None


@pytest.mark.parametrize("flag", ["--version", "-v"])
def test_version(flag):
    cp = sbxrun(flag)
    assert cp.returncode == 0, describe(cp)
    lines = cp.stdout.splitlines()
    assert len(lines) >= 4, cp.stdout
    m = re.fullmatch(r"sbxrun version (\d+\.\d+\.\d+\S*)", lines[0])
    assert m, lines[0]
    if configure_version():
        assert m.group(1) == configure_version()
    assert re.fullmatch(r"commit: ([0-9a-f]{7,40}(-dirty)?|unknown)", lines[1]), lines[1]
    assert re.fullmatch(r"spec: 1\.\d+\.\d+", lines[2]), lines[2]
    tags = lines[3].split()
    assert tags and all(re.fullmatch(r"[+-][A-Z0-9_]+", t) for t in tags), lines[3]
    for feature in ("+SECCOMP", "+CAP", "+NFTABLES", "+YAJL"):
        assert feature in tags


def test_help():
    cp = sbxrun("--help")
    assert cp.returncode == 0, describe(cp)
    assert cp.stdout.startswith("Usage: sbxrun")
    for opt in ("--root", "--log", "--log-format", "--debug", "--systemd-cgroup", "--version"):
        assert opt in cp.stdout
    assert {"spec", "features"} <= set(subcommands())
    assert sbxrun("-h").stdout == cp.stdout


def test_no_command_prints_usage_and_fails():
    cp = sbxrun()
    assert cp.returncode != 0
    assert "Usage: sbxrun" in cp.stderr


@pytest.mark.parametrize("cmd", subcommands())
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_subcommand_help(cmd, flag):
    cp = sbxrun(cmd, flag)
    assert cp.returncode == 0, describe(cp)
    assert cp.stdout.startswith(f"Usage: sbxrun {cmd}"), cp.stdout
    assert cp.stderr == ""


def test_unknown_command():
    cp = sbxrun("nosuchcommand")
    assert cp.returncode != 0
    assert "nosuchcommand" in cp.stderr


def test_unknown_global_option():
    cp = sbxrun("--nosuchoption", "spec")
    assert cp.returncode != 0
    assert "--nosuchoption" in cp.stderr


@pytest.mark.parametrize("cmd", subcommands())
def test_unknown_subcommand_option(cmd):
    cp = sbxrun(cmd, "--nosuchoption")
    assert cp.returncode != 0, describe(cp)
    assert "--nosuchoption" in cp.stderr, describe(cp)
    assert cp.stdout == ""


def test_missing_option_argument():
    cp = sbxrun("spec", "--bundle")
    assert cp.returncode != 0
    assert "bundle" in cp.stderr


def test_unknown_log_format(tmp_path):
    cp = sbxrun("--log", tmp_path / "log", "--log-format", "yaml", "features")
    assert cp.returncode != 0
    assert "yaml" in cp.stderr


def read_json_lines(path):
    lines = path.read_text().splitlines()
    assert lines, f"{path} is empty"
    return [json.loads(line) for line in lines]


def test_log_json_error(tmp_path):
    log = tmp_path / "sbxrun.log"
    cp = sbxrun("--log", log, "--log-format", "json", "nosuchcommand")
    assert cp.returncode != 0
    entries = read_json_lines(log)
    for e in entries:
        assert {"level", "msg", "time"} <= set(e), e
        assert isinstance(e["msg"], str)
        # RFC 3339 in UTC, as runc writes it
        datetime.datetime.fromisoformat(e["time"].replace("Z", "+00:00"))
    errors = [e for e in entries if e["level"] == "error"]
    assert errors, entries
    assert any("nosuchcommand" in e["msg"] for e in errors), errors


def test_log_json_appends(tmp_path):
    log = tmp_path / "sbxrun.log"
    for word in ("first", "second"):
        sbxrun("--log", log, "--log-format", "json", word)
    msgs = [e["msg"] for e in read_json_lines(log)]
    assert any("first" in m for m in msgs) and any("second" in m for m in msgs), msgs


def test_log_text_error(tmp_path):
    log = tmp_path / "sbxrun.log"
    cp = sbxrun("--log", log, "nosuchcommand")
    assert cp.returncode != 0
    text = log.read_text()
    assert "error" in text and "nosuchcommand" in text, text
    with pytest.raises(ValueError):
        json.loads(text.splitlines()[0])


def test_log_file_unwritable(tmp_path):
    cp = sbxrun("--log", tmp_path / "no" / "such" / "dir" / "log", "features")
    assert cp.returncode != 0
    assert "log" in cp.stderr


def test_go_style_single_dash_options(tmp_path):
    """runc (Go flag package) accepts -bundle as well as --bundle."""
    cp = sbxrun("spec", "-bundle", tmp_path)
    assert cp.returncode == 0, describe(cp)
    assert (tmp_path / "config.json").exists()
