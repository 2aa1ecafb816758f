"""benchmarks/suite_times.py: two JUnit files compared as issue 30 asks (whole runs, and the tests both ran)."""

from __future__ import annotations

from pathlib import Path

from benchmarks.suite_times import file_of, main, read, report

OLD = """<testsuites><testsuite>
<testcase classname="tests.unit.test_a" name="test_one" time="2.0"/>
<testcase classname="tests.unit.test_a" name="test_two" time="1.0"><failure message="x"/></testcase>
<testcase classname="tests.codec.test_b.TestGroup" name="test_three" time="4.0"><skipped/></testcase>
</testsuite></testsuites>"""
NEW = """<testsuites><testsuite>
<testcase classname="tests.unit.test_a" name="test_one" time="3.0"/>
<testcase classname="tests.unit.test_a" name="test_two" time="1.0"/>
<testcase classname="tests.codec.test_b.TestGroup" name="test_three" time="5.0"/>
<testcase classname="tests.images.test_c" name="test_new" time="30.0"/>
</testsuite></testsuites>"""


def test_ids_map_to_their_files() -> None:
    assert file_of("tests.codec.test_b.TestGroup::test_three") == "tests/codec/test_b.py"
    assert file_of("tests.unit.test_a::test_one[param]") == "tests/unit/test_a.py"


def test_the_report_separates_what_both_ran_from_what_is_new(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    (tmp_path / "old.xml").write_text(OLD)
    (tmp_path / "new.xml").write_text(NEW)
    old, new = read(tmp_path / "old.xml"), read(tmp_path / "new.xml")
    assert old["tests.unit.test_a::test_two"].outcome == "failed"
    assert old["tests.codec.test_b.TestGroup::test_three"].outcome == "skipped"
    lines = report(old, new)
    assert lines[0] == "old: 3 tests (1 failed, 1 passed, 1 skipped), 7 s of tests"
    assert lines[1] == "new: 4 tests (4 passed), 39 s of tests"
    assert lines[2] == "the 3 tests both ran: old 7 s, new 9 s (new/old 1.29)"
    assert lines[3].startswith("test files only in new: 1, 30 s") and "tests/images/test_c.py" in lines[4]
    assert main([str(tmp_path / "old.xml"), str(tmp_path / "new.xml")]) == 0
    assert "the 3 tests both ran" in capsys.readouterr().out
