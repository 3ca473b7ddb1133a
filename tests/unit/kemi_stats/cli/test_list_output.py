"""`list` prints a block at a time, and says the same as a print of the whole list."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import orjson
import pytest
import yaml
from click.testing import CliRunner

from kemi_stats.cli.output import BLOCK, print_entries, shown
from kemi_stats.errors import BackendUnavailable
from kemi_stats.registry.models import Target
from kemi_stats.registry.store import Entry

N = 2 * BLOCK + 7


def _entries() -> list[Entry]:
    return [
        Entry(
            "target",
            f"dev-{i:05d}",
            Target(
                host=f"127.0.{i // 250}.{i % 250 + 1}",
                credential="lab",
                profiles=["system"],
                labels={"site": "é"},
            ),
            i + 1,
        )
        for i in range(N)
    ]


def _printed(capsys: pytest.CaptureFixture[str], output: str, entries: list[Entry]) -> str:
    print_entries("target", iter(entries), output)
    return capsys.readouterr().out


def test_json_and_yaml_are_one_mapping_of_every_entry(capsys: pytest.CaptureFixture[str]) -> None:
    entries = _entries()
    whole = {e.name: shown("target", e) for e in entries}
    text = _printed(capsys, "json", entries)
    assert text == orjson.dumps(whole, option=orjson.OPT_INDENT_2).decode() + "\n"
    assert yaml.safe_load(_printed(capsys, "yaml", entries)) == whole
    assert _printed(capsys, "json", []) == "{}\n"
    assert yaml.safe_load(_printed(capsys, "yaml", [])) == {}


def test_csv_has_one_header_and_every_row(capsys: pytest.CaptureFixture[str]) -> None:
    rows = list(csv.reader(io.StringIO(_printed(capsys, "csv", _entries()))))
    assert rows[0][:3] == ["name", "host", "port"]
    assert [r[0] for r in rows[1:]] == [f"dev-{i:05d}" for i in range(N)]
    assert _printed(capsys, "csv", []).splitlines() == [",".join(rows[0])]


def test_table_columns_line_up_from_the_first_block(capsys: pytest.CaptureFixture[str]) -> None:
    lines = _printed(capsys, "table", _entries()).splitlines()
    assert lines[0].startswith("NAME") and len(lines) == N + 1
    # the HOST column starts at the same place on every line
    at = lines[0].index("HOST")
    assert all(line[at - 2 : at] == "  " and line[at] != " " for line in lines[1:])
    assert _printed(capsys, "table", []).startswith("NAME")


class _FailingRegistry:
    """Two pages' worth of targets, then etcd goes away."""

    def iter_entries(self, kind: str, on_invalid: object = None) -> Iterator[Entry]:
        yield from _entries()[:1500]
        raise BackendUnavailable("etcd 127.0.0.1:2379: read /kemi/targets/: unreachable (reset)")


def test_a_list_that_etcd_cuts_short_says_that_what_it_printed_is_incomplete(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from kemi_stats.cli.context import CliContext
    from kemi_stats.cli.main import cli

    monkeypatch.setattr(CliContext, "registry", property(lambda self: _FailingRegistry()))
    result = CliRunner().invoke(cli, ["target", "list", "-o", "csv"])
    assert result.exit_code == 1
    assert result.stdout.count("\n") == 1 + BLOCK  # the first block was printed as it came
    assert result.stderr.strip().endswith(
        "unreachable (reset) (the list above is incomplete: it stopped after 1500 entries)"
    )
