"""The measured numbers of README and docs are those the committed results files render (devtools/doc_numbers.py).

No Spark: the renderers read docs/benchmarks/*.json. A stale document fails here; `make docs-numbers` fixes it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from devtools import doc_numbers
from devtools.doc_numbers import BLOCKS, DocNumbersError

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_every_document_shows_the_numbers_its_results_files_render():
    stale = [str(path.relative_to(REPO_ROOT)) for path in doc_numbers.stale_documents()]
    assert not stale, (
        f"documents whose measured numbers differ from docs/benchmarks/*.json: {stale}; run make docs-numbers"
    )


def test_every_block_is_shown_somewhere_and_every_results_file_is_committed():
    text = "\n".join(path.read_text() for path in doc_numbers.documents())
    assert [name for name in BLOCKS if f"<!-- generated:{name}:start -->" not in text] == []
    for source in {block.source for block in BLOCKS.values()}:
        assert (REPO_ROOT / source).is_file(), source


@pytest.fixture
def scratch_repo(tmp_path):
    """A repository with the committed results files and one document quoting them."""
    (tmp_path / "docs" / "benchmarks").mkdir(parents=True)
    for source in {block.source for block in BLOCKS.values()}:
        shutil.copy(REPO_ROOT / source, tmp_path / source)
    shutil.copy(REPO_ROOT / "docs" / "benchmarks" / "README.md", tmp_path / "docs" / "benchmarks" / "README.md")
    (tmp_path / "README.md").write_text(
        "Ratio: <!-- generated:stream-equivalence-summary:start -->old"
        "<!-- generated:stream-equivalence-summary:end -->.\n"
        "<!-- generated:bench-headline:start -->\nold\n<!-- generated:bench-headline:end -->\n"
    )
    return tmp_path


def test_a_number_that_drifts_from_its_results_file_is_caught_and_rewritten(scratch_repo):
    readme = scratch_repo / "README.md"
    assert doc_numbers.stale_documents(scratch_repo) == [readme]
    assert doc_numbers.write_documents(scratch_repo) == [readme]
    assert doc_numbers.stale_documents(scratch_repo) == []
    assert "\n5,000,000 events on 2 cores" in readme.read_text()

    results_path = scratch_repo / "docs" / "benchmarks" / "results.json"
    results = json.loads(results_path.read_text())
    results["online_lookup"]["median"]["p99_ms"] = 123.456  # a new run
    results_path.write_text(json.dumps(results))
    stale = doc_numbers.stale_documents(scratch_repo)
    # The README's headline sentence and the benchmark's own table (`results` markers) both quote it.
    assert stale == [readme, scratch_repo / "docs" / "benchmarks" / "README.md"]
    doc_numbers.write_documents(scratch_repo)
    assert "online lookup p99 123.456 ms" in readme.read_text()
    assert doc_numbers.stale_documents(scratch_repo) == []


def test_a_hand_edited_number_inside_a_block_is_caught(scratch_repo):
    doc_numbers.write_documents(scratch_repo)
    readme = scratch_repo / "README.md"
    text = readme.read_text()
    assert "changed 0 of 1,000,000 rows" in text
    readme.write_text(text.replace("changed 0 of", "changed 1 of"))
    assert doc_numbers.stale_documents(scratch_repo) == [readme]


def test_inline_blocks_stay_inside_their_sentence(scratch_repo):
    doc_numbers.write_documents(scratch_repo)
    first_line = (scratch_repo / "README.md").read_text().splitlines()[0]
    assert first_line.startswith("Ratio: <!-- generated:stream-equivalence-summary:start -->At ")
    assert first_line.endswith("<!-- generated:stream-equivalence-summary:end -->.")


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("<!-- generated:no-such-block:start -->x<!-- generated:no-such-block:end -->", r"'no-such-block': no such"),
        ("<!-- generated:bench-headline:start -->x", "bench-headline without a matching end marker"),
    ],
)
def test_a_bad_marker_fails_naming_it(scratch_repo, document, message):
    (scratch_repo / "README.md").write_text(document)
    with pytest.raises(DocNumbersError, match=message):
        doc_numbers.stale_documents(scratch_repo)


def test_a_missing_results_file_fails_naming_it(scratch_repo):
    (scratch_repo / "docs" / "benchmarks" / "stream_equivalence.json").unlink()
    with pytest.raises(DocNumbersError, match=r"stream_equivalence\.json: the results file"):
        doc_numbers.stale_documents(scratch_repo)


def test_check_exits_1_on_a_stale_document_and_names_it(scratch_repo, capsys):
    assert doc_numbers.main(["--check"], root=scratch_repo) == 1
    assert "stale: README.md" in capsys.readouterr().out
    assert doc_numbers.main([], root=scratch_repo) == 0
    assert "rewrote: README.md" in capsys.readouterr().out
    assert doc_numbers.main(["--check"], root=scratch_repo) == 0


def test_a_bad_marker_exits_1_with_the_reason(scratch_repo, capsys):
    (scratch_repo / "README.md").write_text("<!-- generated:nope:start -->x<!-- generated:nope:end -->")
    assert doc_numbers.main(["--check"], root=scratch_repo) == 1
    assert "'nope': no such block" in capsys.readouterr().err
