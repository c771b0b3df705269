"""The notebooks' small helpers: one thread for the course (one place), printed progress for long cells, and
tables that render in a notebook's width."""

import os

import torch

from cfcam.core.engine.threads import CORE_THREADS_ENV, MODEL_THREADS_ENV, core_thread_count, model_thread_count
from cfcam.evaluation.engine import choose_threads
from cfcam.teaching.progress import PrintedProgress
from cfcam.teaching.tables import breakable, breakable_header, claims_table, tables_by_category
from cfcam.teaching.threads import use_one_thread


def test_one_thread_for_torch_and_cfcams_own_choices(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.delenv(MODEL_THREADS_ENV, raising=False)
    monkeypatch.delenv(CORE_THREADS_ENV, raising=False)
    try:
        torch.set_num_threads(2)
        assert use_one_thread() == 1
        assert torch.get_num_threads() == 1
        # the evaluation's, the command line's and the core's block threads follow it
        assert choose_threads() == 1 and model_thread_count() == 1 and core_thread_count() == 1
        assert os.environ[MODEL_THREADS_ENV] == "1"
    finally:
        torch.set_num_threads(before)


def test_printed_progress_prints_steps_not_every_tick():
    lines = []
    progress = PrintedProgress("run", every=3600, out=lines.append)
    progress(0, 10, "starting")
    for done in range(1, 5):
        progress(done, 10, "gradcam: maps")  # one new label: one line, then quiet within `every`
    progress(6, 10, "gradcam: deletion")
    progress(10, 10, "done")
    assert len(lines) == 4 and progress.lines == 4
    assert lines[0].startswith("run:   0 %") and "gradcam: maps" in lines[1] and lines[-1].startswith("run: 100 %")
    PrintedProgress(every=0, out=lines.append)(1, 0, "")  # no total: no division by zero
    assert lines[-1].startswith("  ? %")


def test_claims_table_is_markdown_with_one_row_per_claim():
    summary = [("gradcam", "deletion_auc", 0.1234, 0.1, 0.2, 40), ("random", "deletion_auc", 0.5, 0.4, 0.6, 40),
               ("gradcam", "robustness_published_ssim@0.1", 0.9, 0.8, 1.0, 0)]
    table = claims_table(summary, [("lower deletion", "deletion_auc"),
                                   ("robust", "robustness_published_ssim@0.1")], ["gradcam", "random"])
    lines = table.strip().splitlines()
    assert lines[0] == "| claim | metric | gradcam | random |" and len(lines) == 4
    assert lines[2] == "| lower deletion | deletion_<wbr>auc | 0.123 (40) | 0.500 (40) |"
    assert lines[3].endswith("| n/a | n/a |")  # n = 0 and a missing row are both "n/a"


def test_breakable_names_wrap_only_in_the_header():
    assert breakable("robustness_fair_ssim@0.1") == "robustness_<wbr>fair_<wbr>ssim@<wbr>0.1"
    table = "| method | deletion_auc |\n|---|---|\n| cfcam_x | 1 |\n"
    assert breakable_header(table) == "| method | deletion_<wbr>auc |\n|---|---|\n| cfcam_x | 1 |\n"


def test_the_full_table_cut_by_category_keeps_every_column_once():
    from cfcam.evaluation import registry
    from cfcam.evaluation.summary import read_summary
    from cfcam.world.models import DATA_DIR

    full = read_summary((DATA_DIR / "evaluation_summary.csv").read_text())
    tables = tables_by_category(full)
    assert [c for c, _ in tables][:4] == ["localisation", "faithfulness", "sanity", "robustness"]
    headers = [t.splitlines()[0].replace("<wbr>", "") for _, t in tables]
    for m in registry.headline():
        assert sum(f" {m} " in h or f" {m} (" in h for h in headers) == 1, m
    assert max(h.count("|") - 1 for h in headers) <= 8, "at most a method column and seven metrics per table"
    methods = {r[0] for r in full}
    assert all(len(t.strip().splitlines()) == 2 + len(methods) for _, t in tables)
