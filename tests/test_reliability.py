"""Issue 12, reliability items: the output swap (#9), bounded loaders (#16), series
matrices (#17, library level), disk full (#18) and misleading messages (#19).

The CLI rows of the catalogue (damaged CEL and series-matrix files) are in
tests/test_bad_inputs.py (``test_other_bad_inputs``); this file holds what needs a
process to kill, a pipe that could hang, a device, a file-size limit or a read-only
folder. Every file here is synthetic and written by the tests.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests import test_bad_inputs as catalogue
from tests.synthetic import planted_dataset, write_pairs, write_tsv
from tests.test_bad_inputs import RMA, _cel_dir, plain, refused, run, snapshot, succeeded
from tfcnn.errors import OutputExistsError, TfcnnInputError
from tfcnn.io import atomic
from tfcnn.io.geo import read_series_matrix, series_matrix_expression
from tfcnn.io.textio import GZIP_FREE_BYTES, gunzip_bounded, load_text, read_bounded

ROOT = Path(__file__).resolve().parents[1]
#: The catalogue's synthetic matrix, pairs and model (a module-scoped fixture).
world = catalogue.world


def _siblings(output: Path) -> list[str]:
    """Hidden siblings of ``output`` (temporaries, set-aside old outputs)."""
    return sorted(p.name for p in output.parent.iterdir() if p.name.startswith("."))


# -- #9: the output swap --------------------------------------------------------------------
def _write_dir(output: Path, text: str, force: bool) -> None:
    with atomic.atomic_dir(output, force=force) as tmp:
        (tmp / "synthetic_result.txt").write_text(text)


def _content(output: Path) -> str:
    return (output / "synthetic_result.txt").read_text()


def test_exchange_swaps_two_paths_in_one_step(tmp_path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.write_text("synthetic file")
    if not atomic.exchange(a, b):
        pytest.skip("this system or file system has no atomic exchange")
    assert a.read_text() == "synthetic file" and b.is_dir()


def test_a_failed_second_rename_puts_the_old_output_back(tmp_path, monkeypatch) -> None:
    """Fallback swap (no exchange): if the new output cannot be renamed in, the old one is
    back under its name at once and nothing is left beside it."""
    output = tmp_path / "synthetic_out"
    _write_dir(output, "old", force=False)
    monkeypatch.setattr(atomic, "exchange", lambda a, b: False)
    real = os.replace

    def replace(src, dst):
        if Path(src).name.endswith(".tmp"):  # the new output: fail as a full disk would
            raise OSError(28, "No space left on device")
        real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="No space left"):
        _write_dir(output, "new", force=True)
    assert _content(output) == "old"
    assert _siblings(output) == []


CHILD = r"""
import os, sys, time
from pathlib import Path
import tfcnn.io.atomic as atomic

mode, output = sys.argv[1], sys.argv[2]
if mode == "fallback":
    atomic.exchange = lambda a, b: False
    real_replace = os.replace

    def replace(src, dst):
        real_replace(src, dst)
        if os.fspath(src) == output:  # the old output was just set aside
            print("between the two renames", flush=True)
            time.sleep(120)

    os.replace = replace
else:
    real_exchange = atomic.exchange

    def exchange(a, b):
        done = real_exchange(a, b)
        print("exchanged" if done else "no exchange", flush=True)
        time.sleep(120)
        return done

    atomic.exchange = exchange
sys.argv = ["tfcnn", *sys.argv[3:]]
if sys.argv[1] == "library":
    with atomic.atomic_dir(output, force=True) as tmp:
        (tmp / "synthetic_result.txt").write_text("new")
else:
    from tfcnn.apps.cli import main
    main()
"""


def _kill_mid_swap(mode: str, output: Path, *args: object) -> str:
    """Run CHILD (``args``: a tfcnn command, or 'library'), SIGKILL it mid-swap; its line."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, mode, str(output), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    try:
        line = proc.stdout.readline().strip()  # the child prints, or ends (then '')
    finally:
        proc.kill()
        _, err = proc.communicate(timeout=30)
    assert line, f"the child ended before the swap: {err}"
    return line


@pytest.mark.parametrize("mode", ["exchange", "fallback"])
def test_a_swap_killed_at_its_worst_moment_loses_nothing(tmp_path, mode) -> None:
    """SIGKILL right after the exchange (old output under the temporary name), or, without
    exchange, between the two renames (name empty, old output in a .old folder): the next
    write of the output puts things right instead of deleting the old output."""
    output = tmp_path / "synthetic_out"
    _write_dir(output, "old", force=False)
    line = _kill_mid_swap(mode, output, "library")
    if line == "no exchange":
        pytest.skip("this system or file system has no atomic exchange")
    if mode == "exchange":
        assert _content(output) == "new"  # never a moment without an output
        assert [n.endswith(".tmp") for n in _siblings(output)] == [True]  # the old one
        _write_dir(output, "newer", force=True)
        assert _content(output) == "newer" and _siblings(output) == []
        return
    assert not output.exists()  # the fallback's one gap: it is what the next run repairs
    [aside], [new] = ([n for n in _siblings(output) if n.endswith(e)] for e in (".old", ".tmp"))
    assert len(_siblings(output)) == 2  # the old output set aside, the complete new one
    assert aside.endswith(".old") and _content(tmp_path / aside / output.name) == "old"
    assert new.endswith(".tmp") and _content(tmp_path / new) == "new"
    with pytest.raises(OutputExistsError, match="already exists"):
        atomic.check_writable(output, force=False)  # the old output is back, so it exists
    assert _content(output) == "old" and _siblings(output) == []  # dead one's .tmp removed
    _write_dir(output, "newer", force=True)
    assert _content(output) == "newer" and _siblings(output) == []


@pytest.fixture(scope="module")
def pairset(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("synthetic_swap")
    expr, known = planted_dataset(n_tfs=4, targets_per_tf=6, n_background=20, n_samples=8)
    write_tsv(expr, d / "synthetic_expression.tsv")
    write_pairs(known, d / "synthetic_pairs.tsv")
    args = ["build-pairs", "-x", d / "synthetic_expression.tsv", "-i", d / "synthetic_pairs.tsv"]
    succeeded(run(*args, "-o", d / "synthetic_pairset", home=d))
    return d / "synthetic_pairset"


def test_train_force_killed_between_the_renames_keeps_the_old_model(pairset, tmp_path) -> None:
    """The issue's case: `train --force` over a model, killed between the fallback's two
    renames. The next `train` puts the old model back: without --force it refuses (the
    model exists and loads), with --force it replaces it and leaves nothing beside it."""
    from tfcnn.model.estimator import PairCNN

    output = tmp_path / "synthetic_model"
    train = ["train", "-p", pairset, "-o", output, "--epochs", "1"]
    succeeded(run(*train, home=tmp_path))
    old = snapshot(output)
    _kill_mid_swap("fallback", output, *train, "--seed", "1", "--force")
    assert not output.exists()
    refused(run(*train, home=tmp_path), "already exists", "--force")
    assert snapshot(output) == old and _siblings(output) == []
    PairCNN.load(output)
    succeeded(run(*train, "--seed", "1", "--force", home=tmp_path))
    assert snapshot(output) != old and _siblings(output) == []


# -- #16: every loader reads regular files only, bounded -------------------------------------
def _run_with_deadline(args: list[object], home: Path, fifos: list[Path], seconds: float = 60):
    """Run the CLI in a thread; fail (after unblocking it) if it waits on a pipe."""
    box: dict[str, object] = {}
    thread = threading.Thread(target=lambda: box.update(result=run(*args, home=home)), daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        for _ in range(300):  # give every blocked reader a writer, then EOF, until it ends
            for fifo in fifos:
                with contextlib.suppress(OSError):
                    os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            thread.join(0.1)
            if not thread.is_alive():
                break
        pytest.fail(f"{args[0]} waited on a named pipe")
    return box["result"]


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


FIFO_CASES = {
    # name: (make the pipe in a folder -> (pipe, args), message fragment)
    "rma: a FIFO named .CEL": lambda w, d: _with(
        _fifo(_cel_dir(d) / "GSM5.CEL"),
        ["rma", "--cel-dir", d / "synthetic_cel", "--cdf", RMA / "synthetic.cdf"],
    ),
    "rma: --cdf a FIFO": lambda w, d: _with(
        _fifo(d / "synthetic.cdf"), ["rma", "--cel-dir", _cel_dir(d), "--cdf", d / "synthetic.cdf"]
    ),
    "predict -x a FIFO": lambda w, d: _with(
        _fifo(d / "synthetic.tsv"),
        ["predict", "-m", w.model, "-r", w.tf, "-x", d / "synthetic.tsv"],
    ),
    "build-pairs -i a FIFO": lambda w, d: _with(
        _fifo(d / "synthetic_pairs.tsv"),
        ["build-pairs", "-x", w.expression, "-i", d / "synthetic_pairs.tsv"],
    ),
    "build-pairs --id-map a FIFO": lambda w, d: _with(
        _fifo(d / "synthetic_map.tsv"),
        ["build-pairs", "-x", w.expression, "-i", w.pairs, "--id-map", d / "synthetic_map.tsv"],
    ),
    "series-matrix --series a FIFO": lambda w, d: _with(
        _fifo(d / "synthetic_series.txt"), ["series-matrix", "--series", d / "synthetic_series.txt"]
    ),
}


def _with(pipe: Path, args: list[object]) -> tuple[Path, list[object]]:
    return pipe, args


@pytest.mark.parametrize("case", list(FIFO_CASES))
def test_named_pipes_are_refused_without_waiting(world, tmp_path, case) -> None:
    pipe, args = FIFO_CASES[case](world, tmp_path)
    output = tmp_path / ("synthetic_out/" if args[0] == "build-pairs" else "synthetic_out.tsv")
    result = _run_with_deadline([*args, "-o", output], world.home, [pipe])
    refused(result, str(pipe), "is a named pipe (FIFO), not a regular file")
    assert not output.exists()


DEVICE_CASES = {
    "rma: a CEL linked to /dev/zero": (
        lambda d: (_cel_dir(d) / "GSM5.CEL", ["rma", "--cel-dir", d / "synthetic_cel"]),
        ["--cdf", RMA / "synthetic.cdf"],
    ),
    "predict -x /dev/zero": (
        lambda d: (d / "synthetic.tsv", ["predict", "-x", d / "synthetic.tsv"]),
        [],
    ),
}


@pytest.mark.parametrize("case", list(DEVICE_CASES))
def test_devices_are_refused_before_reading(world, tmp_path, case) -> None:
    """/dev/zero behind a file name: refused, never read (in a child process with a memory
    and time limit, so a regression fails instead of filling the machine's memory)."""
    make, extra = DEVICE_CASES[case]
    link, args = make(tmp_path)
    link.symlink_to("/dev/zero")
    if args[0] == "predict":
        extra = ["-m", world.model, "-r", world.tf]
    output = tmp_path / "synthetic_out.tsv"

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (8 * 2**30, 8 * 2**30))

    proc = subprocess.run(
        [sys.executable, "-m", "tfcnn", *map(str, [*args, *extra, "-o", output])],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limit,
        env={**os.environ, "OMP_NUM_THREADS": "1", "TFCNN_HOME": str(world.home)},
    )
    err = " ".join(plain(proc.stderr).split())
    assert proc.returncode == 2, err
    assert "Traceback" not in err and err.count("error: ") == 1
    assert f"{link} (a link to /dev/zero) is a character device, not a regular file" in err
    assert not output.exists()


def test_read_bounded_refuses_a_pipe_swapped_in_after_a_check(tmp_path) -> None:
    """The reader checks the opened descriptor, not only the name: a pipe is refused without
    waiting for a writer, and a size beyond the cap before reading."""
    pipe = _fifo(tmp_path / "synthetic.tsv")
    with pytest.raises(TfcnnInputError, match="is a named pipe"):
        read_bounded(pipe)
    big = tmp_path / "synthetic_big.tsv"
    big.write_bytes(b"x" * 100)
    with pytest.raises(TfcnnInputError, match="is 100 bytes, more than the 99 tfcnn reads"):
        read_bounded(big, max_bytes=99)
    assert read_bounded(big, max_bytes=100) == b"x" * 100


def test_gzip_bombs_are_refused_before_they_are_inflated(tmp_path) -> None:
    """64 MiB of zeros in ~64 KB of gzip: refused after at most GZIP_FREE_BYTES (16 MiB) of
    output, as an expression matrix (.tsv.gz) and as raw instrument data."""
    bomb = gzip.compress(bytes(64 * 2**20), 9)
    path = tmp_path / "synthetic_bomb.tsv.gz"
    path.write_bytes(bomb)
    tracemalloc.start()
    try:
        with pytest.raises(TfcnnInputError, match="refused as a possible decompression bomb"):
            load_text(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * GZIP_FREE_BYTES + len(bomb) * 4, peak
    with pytest.raises(TfcnnInputError, match="expands to more than 1,000 bytes"):
        gunzip_bounded("synthetic", gzip.compress(bytes(2000)), max_bytes=1000)


def test_bounded_gunzip_reads_concatenated_members_and_padding() -> None:
    data = gzip.compress(b"gene\tS1\n") + gzip.compress(b"AT1G01010\t1.5\n") + bytes(8)
    assert gunzip_bounded("synthetic", data) == b"gene\tS1\nAT1G01010\t1.5\n"
    with pytest.raises(EOFError):
        gunzip_bounded("synthetic", gzip.compress(b"x" * 1000)[:-12])


# -- #17: series matrices (library level; the CLI rows are in test_bad_inputs) --------------
def _series(path: Path, samples: list[str], rows: list[list[str]]) -> Path:
    header = "\t".join(['"ID_REF"', *[f'"{s}"' for s in samples]])
    lines = ["!series_matrix_table_begin", header]
    lines += ["\t".join(r) for r in rows] + ["!series_matrix_table_end"]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_gsm_in_two_series_is_kept_once_only_when_both_agree(tmp_path) -> None:
    rows = [[f"p{i}_at", f"{2 + i}.5", f"{3 + i}.5"] for i in range(5)]
    a = _series(tmp_path / "a.txt", ["GSM1", "GSM2"], rows)
    b = _series(tmp_path / "b.txt", ["GSM2", "GSM3"], [[r[0], r[2], r[1]] for r in rows])
    out = series_matrix_expression([a, b])
    assert list(out.columns) == ["GSM1", "GSM2", "GSM3"]  # never 'GSM2.1'
    c = _series(tmp_path / "c.txt", ["GSM2", "GSM4"], [[r[0], "9.9", r[1]] for r in rows])
    with pytest.raises(TfcnnInputError, match="sample GSM2 is in both .*a.txt and .*c.txt"):
        series_matrix_expression([a, c])


def test_series_matrix_output_always_loads_as_an_expression_matrix(tmp_path) -> None:
    """Missing cells drop their probe; what is written is a valid matrix (unique probes,
    finite values), which read_expression loads."""
    from tfcnn.io.expression import read_expression

    rng = np.random.default_rng(0)
    rows = [[f"p{i}_at", *[f"{v:.3f}" for v in rng.lognormal(6, 1, 4)]] for i in range(30)]
    rows[3][2] = "null"
    path = _series(tmp_path / "synthetic.txt", ["GSM1", "GSM2", "GSM3", "GSM4"], rows)
    assert np.isnan(read_series_matrix(path).loc["p3_at", "GSM2"])
    output = tmp_path / "synthetic_out.tsv"
    succeeded(run("series-matrix", "--series", path, "-o", output, home=tmp_path))
    matrix = read_expression(output)
    assert matrix.n_genes == 29 and "p3_at" not in matrix.genes


# -- #18 / #19: disk full, read-only folders, misleading messages ---------------------------
def _disk_full(args: list[object], home: Path, limit: int = 1000) -> subprocess.CompletedProcess:
    """``tfcnn ARGS`` with files limited to ``limit`` bytes: writes fail as on a full disk."""

    def small_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run(
        [sys.executable, "-m", "tfcnn", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=small_files,
        env={
            **os.environ,
            "OMP_NUM_THREADS": "1",
            "TFCNN_HOME": str(home),
            "PYTHONDONTWRITEBYTECODE": "1",
            "COLUMNS": "200",
        },
    )


DISK_FULL = {
    "predict -o .csv": lambda w, out: ["predict", "-m", w.model, "-r", w.tf, "-o", out / "p.csv"],
    "train -o folder": lambda w, out: [
        *("train", "-x", w.expression, "-i", w.pairs, "--epochs", "1", "-o", out / "model"),
    ],
    "explain pair -o .png": lambda w, out: [
        *("explain", "pair", "-m", w.model, "--tf", w.tf, "--target", w.target),
        *("-o", out / "pair.png"),
    ],
    "series-matrix -o .tsv": lambda w, out: [
        *("series-matrix", "--series", _series_for(out), "-o", out / "series.tsv"),
    ],
    "predict -o .xlsx": lambda w, out: ["predict", "-m", w.model, "-r", w.tf, "-o", out / "p.xlsx"],
}


def _series_for(out: Path) -> Path:
    rng = np.random.default_rng(1)
    rows = [[f"p{i}_at", *[f"{v:.3f}" for v in rng.lognormal(6, 1, 4)]] for i in range(200)]
    return _series(out.parent / "synthetic_series.txt", ["GSM1", "GSM2", "GSM3", "GSM4"], rows)


@pytest.mark.slow
@pytest.mark.parametrize(
    "case",
    DISK_FULL,
)
def test_a_full_disk_gives_one_message_naming_the_output_and_leaves_nothing(
    world, tmp_path, case
) -> None:
    out = tmp_path / "synthetic_out"
    out.mkdir()
    args = DISK_FULL[case](world, out)
    target = Path(str(args[-1]))
    proc = _disk_full(args, world.home)
    err = " ".join(plain(proc.stderr).split())
    assert proc.returncode == 2, err
    assert err.count("error: ") == 1 and "Traceback" not in err, err
    assert f"{target}: File too large (while writing it; nothing was written" in err
    assert ".tmp" not in err
    assert list(out.iterdir()) == [], "partial output or temporary left"


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """``folder`` made unwritable: immutable for root (who ignores modes), else mode 555."""
    if os.geteuid() == 0:
        if shutil.which("chattr") is None:
            pytest.skip("root without chattr: cannot make a folder read-only")
        if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode:
            pytest.skip("this file system has no immutable attribute")
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
    else:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)


def test_train_into_a_read_only_folder_is_refused_before_training(world, tmp_path) -> None:
    folder = tmp_path / "synthetic_read_only"
    folder.mkdir()
    args = ["train", "-x", world.expression, "-i", world.pairs, "--epochs", "1"]
    with read_only(folder):
        result = run(*args, "-o", folder / "model", home=world.home)
        message = refused(result, f"cannot write {folder / 'model'}: the folder {folder} is not")
        assert "--output" in message
        assert "epochs" not in plain(result.output)  # refused before any training
        fetch = ["fetch", "atgenexpress", "--dest", folder / "cel", "--no-progress"]
        refused(run(*fetch, home=world.home), f"cannot download into --dest {folder / 'cel'}")
    assert list(folder.iterdir()) == []


def test_fetch_into_a_file_says_it_is_a_file(world, tmp_path) -> None:
    dest = tmp_path / "synthetic_dest.txt"
    dest.write_text("synthetic\n")
    for args in (["atgenexpress"], ["atregnet", "--url", "https://example.invalid/A.zip"]):
        message = refused(
            run("fetch", *args, "--dest", dest, "--no-progress", home=world.home),
            f"--dest {dest} is a file, not a folder",
        )
        assert "File exists" not in message
    assert dest.read_text() == "synthetic\n"


def test_a_write_error_names_the_output_not_its_temporary(tmp_path) -> None:
    output = tmp_path / "synthetic.tsv"
    with pytest.raises(OSError) as err, atomic.atomic_path(output) as tmp:
        raise PermissionError(13, "Permission denied", str(tmp))
    assert err.value.filename == str(output) and ".tmp" not in str(err.value)
    with pytest.raises(OSError) as err, atomic.atomic_path(output):
        raise RuntimeError("Error while serializing: I/O error: No space left (os error 28)")
    assert err.value.errno == 28 and err.value.filename == str(output)
    with pytest.raises(FileNotFoundError) as other, atomic.atomic_path(output):
        open(tmp_path / "synthetic_missing_input.tsv")  # noqa: SIM115 - about another file
    assert other.value.filename.endswith("synthetic_missing_input.tsv")
    assert _siblings(output) == [] and not output.exists()


@pytest.mark.parametrize("target", ["{tf}", " {tf} ", "{tf_lower}"])
def test_explain_pair_refuses_a_self_pair_before_loading_anything(world, tmp_path, target) -> None:
    """Checked before the model is read: the model path here does not even exist."""
    tf = "AT1G01010"
    target = target.format(tf=tf, tf_lower=tf.lower())
    args = ["explain", "pair", "-m", tmp_path / "synthetic_missing_model", "--tf", tf]
    refused(
        run(*args, "--target", target, home=world.home),
        f"--tf and --target are the same gene ({tf})",
    )
    self_pair = ["explain", "pair", "-m", world.model, "--tf", world.tf, "--target", world.tf]
    refused(run(*self_pair, home=world.home), "self-pairs are never scored")


def test_explain_pair_plot_format_follows_the_extension(world, tmp_path) -> None:
    args = ["explain", "pair", "-m", tmp_path / "synthetic_missing_model"]
    args += ["--tf", world.tf, "--target", world.target]
    for bad, fragment in [("ex.txt", ".txt is not a plot type"), ("ex", "no extension")]:
        message = refused(run(*args, "-o", tmp_path / bad, home=world.home), fragment)
        assert ".png, .svg, .pdf" in message
    args[3] = world.model
    magic = {"png": b"\x89PNG", "svg": b"<?xml", "pdf": b"%PDF"}
    for ext, start in magic.items():
        output = tmp_path / f"synthetic_pair.{ext.upper()}"
        succeeded(run(*args, "-o", output, home=world.home))
        assert output.read_bytes().startswith(start)
