"""Every case of the malformed-input corpus (tests/fuzz/corpus_*.py) behaves as it states."""

import re

import pytest

from tests.fuzz.corpus import all_cases

CASES = all_cases()


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_case_behaves_as_stated(case, tmp_path):
    folder = case.write(tmp_path / case.name)
    if case.raises is not None:
        with pytest.raises(case.raises) as caught:
            case.run(folder)
        if case.match is not None:
            assert re.search(case.match, str(caught.value)), (
                f"{case.behaviour}: message {str(caught.value)!r} does not match {case.match!r}"
            )
    else:
        case.check(case.run(folder), folder)


def test_corpus_writes_every_case(tmp_path):
    from tests.fuzz.corpus import write_corpus

    write_corpus(tmp_path)
    listing = (tmp_path / "CASES.md").read_text()
    assert all(f"`{case.name}`" in listing for case in CASES)
