

def test_report_folders_merge_into_one(tmp_path):
    from cfcam.evaluation.engine import MethodRun
    from cfcam.evaluation.report import merge_folders, read_runs, write_report

    curves = {"deletion": np.array([1.0, 0.5]), "insertion": np.array([0.2, 0.9])}
    write_report([MethodRun("a", [("a", 0, "m", 1.0, ""), ("a", 1, "m", np.nan, "zero map")], curves, {"fc": 0.5})],
                 tmp_path / "one", {"description": "part one", "seed": 0}, plots=False)
    write_report([MethodRun("b", [("b", 0, "m", 3.0, "")], curves, {})], tmp_path / "two",
                 {"description": "part two", "seed": 0}, plots=False)
    summary = merge_folders([tmp_path / "one", tmp_path / "two"], tmp_path / "all", plots=False)
    assert summary == [("a", "m", 1.0, 1.0, 1.0, 1), ("b", "m", 3.0, 3.0, 3.0, 1)]
    runs = read_runs(tmp_path / "all")
    assert [r.method for r in runs] == ["a", "b"] and runs[0].rows[1][4] == "zero map"
    assert np.allclose(runs[0].curves["insertion"], [0.2, 0.9]) and runs[0].cascade == {"fc": 0.5}
