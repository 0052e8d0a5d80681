"""docs/cli.md against the two binaries: every flag `runc CMD --help` lists
has a row, a row marked same/extended/refused names a flag sbxrun's help
lists, and a row marked missing names one it does not."""

import re
import shutil

import pytest

from conftest import TOP_SRCDIR, run_cmd, sbxrun

RUNC = shutil.which("runc") or ("/usr/sbin/runc" if shutil.which("/usr/sbin/runc") else None)
COMMANDS = ["checkpoint", "create", "delete", "events", "exec", "kill", "list", "pause", "ps",
            "restore", "resume", "run", "spec", "start", "state", "update", "features"]


def table():
    """{(command, flag): status word} from docs/cli.md's flag tables."""
    rows = {}
    for line in (TOP_SRCDIR / "docs" / "cli.md").read_text().splitlines():
        m = re.fullmatch(r"\| (\(global\)|`[a-z]+`) \| (.+?) \| (\w+).*\|", line)
        if not m:
            continue
        cmd = m.group(1).strip("`")
        for flag in re.findall(r"`(--[a-z0-9-]+)", m.group(2)):
            rows[(cmd, flag)] = m.group(3)
    return rows


def long_flags(help_text):
    return set(re.findall(r"(?:^|[\s,])(--[a-z0-9][a-z0-9-]*)", help_text, re.M))


def runc_flags(cmd):
    out = run_cmd([RUNC, *([cmd] if cmd != "(global)" else []), "--help"]).stdout
    section = out.split("OPTIONS:", 1)[1] if "OPTIONS:" in out else ""
    # update's help embeds a JSON sample between its options: flags only
    # start lines.
    return {f for f in re.findall(r"^\s+(--[a-z0-9-]+)", section, re.M)} - {"--help"}


@pytest.mark.skipif(RUNC is None, reason="runc is not installed (apt-get install runc)")
@pytest.mark.parametrize("cmd", ["(global)", *COMMANDS])
def test_every_runc_flag_has_a_row(cmd):
    rows = table()
    missing = sorted(f for f in runc_flags(cmd) if (cmd, f) not in rows)
    assert missing == [], f"docs/cli.md lacks rows for runc {cmd} {missing}"


@pytest.mark.parametrize("cmd", ["(global)", *COMMANDS])
def test_rows_match_sbxrun_help(cmd):
    help_text = sbxrun(*([cmd] if cmd != "(global)" else []), "--help").stdout
    have = long_flags(help_text)
    bad = []
    for (c, flag), status in table().items():
        if c != cmd:
            continue
        if status == "missing":
            if flag in have:
                bad.append(f"{flag}: marked missing but sbxrun lists it")
        elif status in ("same", "extended", "refused"):
            if flag not in have:
                bad.append(f"{flag}: marked {status} but sbxrun does not list it")
        else:
            bad.append(f"{flag}: unknown status `{status}`")
    assert bad == [], "\n".join(bad)


@pytest.mark.parametrize("args", [["--rootless", "true"], ["--rootless", "false"],
                                  ["--rootless=auto"], ["--rootless"]])
def test_rootless_takes_runc_syntax(args, tmp_path):
    """runc's `--rootless VALUE` (a separate word) must not be taken for the
    command."""
    cp = sbxrun("--root", tmp_path / "root", *args, "list", "-q")
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout == ""


def test_rootless_bad_value_is_refused(tmp_path):
    cp = sbxrun("--root", tmp_path / "root", "--rootless=maybe", "list")
    assert cp.returncode != 0
    assert "--rootless `maybe`" in cp.stderr
