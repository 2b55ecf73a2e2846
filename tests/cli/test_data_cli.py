import pandas as pd
import pytest

from benchmark.cli.main import main


def test_help_lists_the_subcommands(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for name in ("data", "demo"):
        assert name in out


def test_simulate_summary_and_push_dry_run(tmp_path, capsys):
    release = tmp_path / "sim"
    assert main(["data", "simulate", "--out", str(release), "--seed", "2", "--units-per-layer", "3"]) == 0
    plot, units = tmp_path / "summary.png", tmp_path / "units.csv"
    code = main(["data", "summary", "--source", str(release), "--plot", str(plot), "--units-out", str(units),
                 "--n-boot", "100"])
    assert code == 0
    out = capsys.readouterr().out
    assert "simnet_a" in out and "split_half" in out and "accuracy (95% CI)" in out
    assert plot.read_bytes()[:4] == b"\x89PNG"
    table = pd.read_csv(units)
    assert len(table) == 9 * 3 * 3 * 2 and {"accuracy", "ci_low", "wilson_high"} <= set(table.columns)  # 9 models

    hub_dir = tmp_path / "hub"
    assert main(["data", "push-to-hub", "--source", str(release), "--repo-id", "me/imi", "--dry-run",
                 "--out", str(hub_dir)]) == 0
    assert (hub_dir / "data" / "main.parquet").is_file() and (hub_dir / "README.md").is_file()
    assert main(["data", "summary", "--source", f"hf:{hub_dir}", "--n-boot", "50"]) == 0


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["data", "summary", "--source", "no/such/folder"], "Invalid data source"),
        (["data", "summary", "--source", "SIM", "--units-out", "units.xlsx"], "suffix must be one of"),
        (["data", "simulate", "--out", "OUT", "--units-per-layer", "0"], "invalid configuration"),
    ],
)
def test_user_errors_exit_2_with_one_message_and_no_traceback(tmp_path, capsys, argv, needle):
    argv = [a.replace("SIM", str(tmp_path)).replace("OUT", str(tmp_path / "o")) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err
    assert err.startswith("imibench: error:")


def test_cli_import_is_light(tmp_path):
    import subprocess
    import sys

    code = "import sys; from benchmark.cli.main import build_parser; build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
