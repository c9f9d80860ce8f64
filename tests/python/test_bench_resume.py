"""`qstar bench --results FILE --resume`: a bench killed with SIGKILL mid-run and resumed prints
the same table and JSON as an uninterrupted run (every column but the wall clock), and a
results file that is cut, malformed or from another command is handled as documented.

Runs the CLI (QSTAR_CLI, or build*/qstar) with the programmatic proposer and the exact oracle
verifier: no models, a few seconds."""
import json
import os
import signal
import subprocess
import time

import pytest

from helpers import REPO, cli_path

CLI = os.path.abspath(cli_path()) if cli_path() else None
pytestmark = pytest.mark.skipif(CLI is None, reason="the qstar CLI is not built (QSTAR_CLI unset)")

# 2 configurations x 150 puzzles (about 1 s of search; the kill comes after the first lines).
FLAGS = {"data": str(REPO / "data" / "game24" / "24.csv"), "ranks": "1-150", "algo": "beam,best-first", "n": "32",
         "generator": "programmatic", "error-rate": "0.1", "verifier": "oracle", "seed": "3"}
TOTAL = 2 * 150


def command(*extra, **over):
    """The bench command line: FLAGS with `over` replacing values (underscores for dashes)."""
    flags = dict(FLAGS, **{k.replace("_", "-"): v for k, v in over.items()})
    return [CLI, "bench", *[x for k, v in flags.items() for x in (f"--{k}", v)], *extra]


def bench(tmp_path, *extra, check=True, **over):
    p = subprocess.run(command(*extra, **over), capture_output=True, text=True, timeout=300, cwd=tmp_path)
    if check:
        assert p.returncode == 0, p.stderr
    return p


def table(stdout):
    """The table's rows without the wall-clock column (the last)."""
    rows = [line.split("|")[1:-2] for line in stdout.splitlines() if line.startswith("|")]
    assert len(rows) == 2 + 2
    return rows


def json_rows(path):
    rows = json.loads(path.read_text())["results"]
    for r in rows:
        del r["wall_s_per_problem"], r["elapsed_s"]
    return rows


def records(path):
    """The results file's problem lines, without their wall clock, by (method, n, index)."""
    lines = path.read_text().splitlines()
    assert json.loads(lines[0])["qstar_bench_results"] == 1
    out = {}
    for line in lines[1:]:
        r = json.loads(line)
        del r["wall_s"]
        key = (r["method"], r["n"], r["index"])
        assert key not in out, f"{path}: {key} twice"
        out[key] = r
    return out


def kill_after_first_lines(tmp_path, results, want=3):
    """Starts the bench writing `results` one problem per chunk and SIGKILLs it once `want`
    problem lines are in the file; returns how many lines the file then had."""
    p = subprocess.Popen(command("--chunk", "1", "--results", str(results)), cwd=tmp_path,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if results.exists() and results.read_bytes().count(b"\n") >= 1 + want:
                break
            assert p.poll() is None, "the bench ended before it could be killed"
            time.sleep(0.005)
        p.send_signal(signal.SIGKILL)
        assert p.wait(timeout=30) == -signal.SIGKILL
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return results.read_bytes().count(b"\n") - 1


def test_killed_bench_resumes_to_the_uninterrupted_table(tmp_path):
    full = bench(tmp_path, "--json", "full.json", "--results", "full.jsonl")
    results = tmp_path / "part.jsonl"
    done = kill_after_first_lines(tmp_path, results)
    assert 3 <= done < TOTAL, done  # killed mid-run: some problems finished, not all
    # A write cut by the kill leaves a partial last line: it is dropped, its problem searched again.
    with open(results, "ab") as f:
        f.write(b'{"method": "beam(M=4)+oracle", "n": 16, "ind')
    resumed = bench(tmp_path, "--json", "part.json", "--chunk", "7", "--results", str(results), "--resume")
    assert "dropped a truncated last line" in resumed.stderr
    assert f"{done} finished problems read back" in resumed.stderr
    assert table(resumed.stdout) == table(full.stdout)
    assert json_rows(tmp_path / "part.json") == json_rows(tmp_path / "full.json")
    # Every problem once, the same records as the uninterrupted run's.
    assert records(results) == records(tmp_path / "full.jsonl")
    assert len(records(results)) == TOTAL
    # Resuming a finished file searches nothing and prints the same table again.
    again = bench(tmp_path, "--results", str(results), "--resume")
    assert f"{TOTAL} finished problems read back" in again.stderr
    assert table(again.stdout) == table(full.stdout)


def test_results_file_errors(tmp_path):
    results = tmp_path / "r.jsonl"
    bench(tmp_path, "--results", str(results), ranks="1-2")
    n_lines = len(results.read_text().splitlines())
    assert n_lines == 1 + 2 * 2
    # An existing file without --resume, and --resume without a file: one-line usage errors.
    p = bench(tmp_path, "--results", str(results), check=False, ranks="1-2")
    assert p.returncode == 2 and "pass --resume" in p.stderr and p.stdout == ""
    p = bench(tmp_path, "--resume", check=False, ranks="1-2")
    assert p.returncode == 2 and "--resume needs --results" in p.stderr
    # Another command's file: the flag that differs is named.
    p = bench(tmp_path, "--results", str(results), "--resume", check=False, ranks="1-2", error_rate="0.2")
    assert p.returncode == 2 and "--error-rate 0.1" in p.stderr and "--error-rate 0.2" in p.stderr
    # A malformed complete line is an error naming FILE:LINE, and the file is left as it was.
    lines = results.read_text().splitlines(keepends=True)
    lines[2] = '{"method": oops}\n'
    results.write_text("".join(lines))
    p = bench(tmp_path, "--results", str(results), "--resume", check=False, ranks="1-2")
    assert p.returncode == 2 and f"{results}:3:" in p.stderr and len(p.stderr.splitlines()) == 1
    assert results.read_text() == "".join(lines)
    # A file cut inside its header (a kill at the very start) is started again.
    results.write_text('{"qstar_bench_results": 1, "fla')
    p = bench(tmp_path, "--results", str(results), "--resume", ranks="1-2")
    assert "dropped a truncated last line" in p.stderr
    assert len(records(results)) == 2 * 2
