"""The bench CLI as a user meets it: listing, bad arguments, corrupted data."""

from __future__ import annotations

import json
import shutil

from benchmark import budgets, cli
from conftest import bench, bench_here
from systems.registry import registry


def test_list_shows_family_and_paper():
    out = bench("list")
    assert out.returncode == 0
    line = next(line for line in out.stdout.splitlines() if line.startswith("upop"))
    assert "Popularity-based" in line and "PEARL" in line


def test_unknown_system_and_bad_settings_exit_2():
    for args in (["--systems", "nope"], ["--systems", "bm25", "--set", "bm25.k9=1"],
                 ["--systems", "bm25", "--set", "bm25.k1=abc"], ["--knob", "nope=1"]):
        out = bench_here("run", "--profile", "tiny", *args)
        assert out.returncode == 2, args
        assert out.stderr.startswith("error: ") and len(out.stderr.strip().splitlines()) == 1, out.stderr


def test_corrupted_dataset_gives_one_line_with_file_and_line(tiny, tmp_path):
    folder = tmp_path / "broken"
    shutil.copytree(tiny.path, folder)
    lines = (folder / "users.jsonl").read_text().splitlines()
    lines[6] = lines[6][:-5]  # truncate line 7 mid-record
    (folder / "users.jsonl").write_text("\n".join(lines) + "\n")
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    out = bench("run", "--systems", "gpop", "--dataset", str(folder), "--results-dir", str(tmp_path / "res"))
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [out.stderr.strip()]
    assert f"{folder / 'users.jsonl'}:" in out.stderr and "checksum mismatch" in out.stderr
    # with the card updated, the broken line itself is reported
    import json

    from benchmark.io import sha256_file

    card = json.loads((folder / "dataset.json").read_text())
    card["files"]["users.jsonl"] = sha256_file(folder / "users.jsonl")
    (folder / "dataset.json").write_text(json.dumps(card))
    out = bench("run", "--systems", "gpop", "--dataset", str(folder), "--results-dir", str(tmp_path / "res"))
    assert out.returncode == 2 and f"{folder / 'users.jsonl'}:7: invalid JSON" in out.stderr
    assert not (tmp_path / "res").exists()
    assert before[folder / "users.jsonl"] == (folder / "users.jsonl").read_bytes()


def test_data_generate_writes_a_valid_dataset(tmp_path):
    out = bench("data", "generate", "--profile", "tiny", "--knob", "seed=3", "--out", str(tmp_path / "d"))
    assert out.returncode == 0, out.stderr
    valid = bench("data", "validate", str(tmp_path / "d"))
    assert valid.returncode == 0 and "wechat-sim-tiny" in valid.stdout


def test_a_run_with_changed_knobs_never_writes_into_the_profiles_results(tmp_path):
    home = tmp_path / "home"
    plain = bench("run", "--profile", "tiny", "--systems", "gpop", "--no-profile", home=home)
    knobbed = bench("run", "--profile", "tiny", "--knob", "personalization=0", "--systems", "gpop", "--no-profile",
                    home=home)
    assert plain.returncode == 0 and knobbed.returncode == 0, knobbed.stderr
    folders = sorted(p.name for p in (home / "results").iterdir())
    assert folders[0] == "wechat-sim-tiny" and folders[1].startswith("wechat-sim-tiny-") and len(folders) == 2


def test_every_smoke_setting_is_a_valid_override():
    for smoke in budgets.SMOKE.values():
        configs = cli._configs(smoke.settings, registry(()))
        for item in smoke.settings:
            key, _, value = item.partition("=")
            system, _, field = key.partition(".")
            assert str(getattr(configs[system], field)) == value, item
        assert cli._online(smoke.online).queries < cli._online(()).queries


def test_the_tiny_profile_trains_at_its_smoke_budget_unless_told_otherwise(tmp_path):
    results = tmp_path / "results/wechat-sim-tiny"

    def dsi_run(*args: str) -> tuple[dict, bool]:
        """The DSI run's config and whether Table 1 marks it as made with non-default settings."""
        out = bench("run", "--profile", "tiny", "--systems", "dsi", "--no-profile", *args, home=tmp_path)
        assert out.returncode == 0, out.stderr
        assert ("smoke budget" in out.stderr) == ("--full-budget" not in args)
        config = json.loads((results / "runs/dsi/seed-0.json").read_text())["config"]
        return config, "DSI‡" in (results / "table1.md").read_text()

    smoke, marked = dsi_run()
    assert (smoke["d_model"], smoke["layers"], smoke["max_steps"]) == (64, 1, 30) and not marked
    changed, marked = dsi_run("--set", "dsi.max_steps=4")
    assert (changed["d_model"], changed["max_steps"]) == (64, 4) and marked  # --set wins over the budget
    full, marked = dsi_run("--full-budget", "--set", "dsi.max_steps=2")
    assert (full["d_model"], full["layers"], full["max_steps"]) == (256, 3, 2) and marked
