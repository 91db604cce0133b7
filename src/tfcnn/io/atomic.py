"""Safe output: write to a temporary sibling, then rename (or exchange) it into place.

Nothing half-written is ever left under the final name, and an existing output is
only replaced when the caller passes ``force=True``.

Temporary siblings are named ``.NAME.HOST-PID.XXXX.tmp``. A process killed outright
(SIGKILL, power loss) cannot remove its own; the next write of the same output on the
same host removes those whose process is gone, so rerunning a killed command leaves no
debris behind.

Replacing an existing folder (``force``) never leaves a moment where neither the old nor
the new output exists under its name: on Linux the two are exchanged in one step
(``renameat2(RENAME_EXCHANGE)``). Where that is not available (other systems, some file
systems), the old output is first moved into a ``.NAME.HOST-PID.XXXX.old`` folder; a
process killed before the new one is renamed in leaves the name empty for a moment, and
the next write of that output (or :func:`restore_interrupted`) puts the old one back
instead of deleting it.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import math
import os
import re
import shutil
import socket
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import OutputExistsError, TfcnnInputError

log = logging.getLogger(__name__)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _publish_mode(path: Path, directory: bool) -> None:
    """Give a temp file/dir the permissions a normal one would have (mkstemp uses 0600)."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


def check_writable(path: str | os.PathLike[str], force: bool) -> Path:
    """Refuse an existing output unless ``force``, or a folder we cannot write in; the path.

    What killed writers of ``path`` left is dealt with first
    (:func:`remove_stale_temporaries`): an output they had set aside is put back, so it
    counts as existing. The folder is checked by :func:`check_folder`, so a read-only
    one is refused before any work starts.
    """
    path = Path(path)
    remove_stale_temporaries(path)
    if path.exists() and not force:
        raise OutputExistsError(
            f"{path} already exists; choose another `output` or pass `force` to replace it."
        )
    check_folder(path.parent, f"cannot write {path}")
    return path


def check_folder(folder: str | os.PathLike[str], what: str = "", option: str = "output") -> Path:
    """The nearest existing folder of ``folder`` (itself or an ancestor), checked writable.

    Writability is tried by creating and dropping an unnamed file there: ``os.access``
    is not enough (it says yes to root on a read-only mount). ``what`` starts the
    message (default: "cannot write in FOLDER"); ``option`` is the parameter to change.
    """
    folder = Path(folder)
    what = what or f"cannot write in {folder}"
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise TfcnnInputError(f"{what}: {existing} is a file, not a folder.")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise TfcnnInputError(
            f"{what}: the folder {existing} is not writable ({exc.strerror or exc}); choose "
            f"another `{option}`."
        ) from None
    return existing


_HOST = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname().split(".")[0]) or "host"


def _temp_prefix(path: Path) -> str:
    return f".{path.name}.{_HOST}-{os.getpid()}."


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: the process exists (another user's)
        return True
    return True


def _remove(path: Path) -> None:
    """Remove a file, link or folder tree; best effort (cleanup must never raise)."""
    with contextlib.suppress(OSError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink()


def _stale_siblings(path: Path) -> list[tuple[Path, str]]:
    """(sibling, 'tmp' or 'old') left by dead processes of this host for ``path``."""
    if not path.parent.is_dir():
        return []
    pattern = re.compile(rf"\.{re.escape(path.name)}\.{re.escape(_HOST)}-(\d+)\.[^.]*\.(tmp|old)")
    found = []
    try:
        siblings = list(path.parent.iterdir())
    except OSError:  # an unreadable folder: nothing of ours can be found there
        return []
    for candidate in siblings:
        m = pattern.fullmatch(candidate.name)
        if m is None or int(m.group(1)) == os.getpid() or _alive(int(m.group(1))):
            continue
        found.append((candidate, m.group(2)))
    return found


def restore_interrupted(path: str | os.PathLike[str]) -> Path | None:
    """Put back an output whose replacement was killed half-way; the path restored, or None.

    Only the fallback swap (no atomic exchange) has such a moment: the old output was
    moved to ``.NAME.HOST-PID.XXXX.old/NAME`` by a process that died before renaming the
    new one in. When nothing is under ``path`` now, the newest such copy is moved back.
    """
    path = Path(path)
    if os.path.lexists(path):
        return None
    saved = [c / path.name for c, kind in _stale_siblings(path) if kind == "old"]
    saved = [s for s in saved if os.path.lexists(s)]
    if not saved:
        return None
    newest = max(saved, key=lambda s: s.lstat().st_mtime_ns)
    os.rename(newest, path)
    with contextlib.suppress(OSError):
        newest.parent.rmdir()
    log.warning(
        "%s: restored the previous output, left aside by a replacement that was interrupted",
        path,
    )
    return path


def remove_stale_temporaries(path: str | os.PathLike[str]) -> list[Path]:
    """Clean up after killed writers of ``path`` on this host; the siblings removed.

    An interrupted replacement's old output is first put back when nothing is under
    ``path`` (:func:`restore_interrupted`). Then the names this module creates
    (``.NAME.HOST-PID.XXXX.tmp`` / ``.old``) whose PID is no longer running are removed;
    a write in progress elsewhere is never touched.
    """
    path = Path(path)
    restore_interrupted(path)
    removed = []
    for candidate, _ in _stale_siblings(path):
        _remove(candidate)
        removed.append(candidate)
    return removed


def _renameat2() -> Callable[..., int] | None:
    """libc's renameat2 (Linux, glibc >= 2.28), or None."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
_RENAMEAT2 = _renameat2()


def exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one atomic step; False where the system cannot.

    Linux ``renameat2(RENAME_EXCHANGE)``; not every file system supports it (the caller
    then falls back to two renames).
    """
    if _RENAMEAT2 is None:
        return False
    if _RENAMEAT2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _swap_in(new: Path, path: Path) -> None:
    """Move the complete ``new`` to ``path``, replacing what is there, never leaving it lost.

    With an atomic exchange the old output ends under ``new``'s temporary name (removed
    here, or as a stale temporary if killed first). Otherwise it is set aside in a
    ``.old`` folder, put back if the second rename fails, and restored by the next write
    if this process is killed in between.
    """
    if exchange(new, path):
        _remove(new)
        return
    aside = Path(tempfile.mkdtemp(prefix=_temp_prefix(path), suffix=".old", dir=path.parent))
    os.replace(path, aside / path.name)
    try:
        os.replace(new, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.replace(aside / path.name, path)
        raise
    finally:
        _remove(aside)


def _under(name: object, tmp: Path) -> bool:
    if not isinstance(name, str | bytes | os.PathLike):
        return False
    text = os.fsdecode(name)
    return text == str(tmp) or text.startswith(str(tmp) + os.sep)


#: Errors of writing itself: raised without a file name by write() and close().
_WRITE_ERRORS = frozenset(
    {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EIO, errno.EROFS, errno.EPERM, errno.EACCES}
)


_ERRNO_IN_TEXT = re.compile(r"(?:\[errno |os error )(\d+)", re.IGNORECASE)


def _write_errno(exc: BaseException, tmp: Path) -> int | None:
    """The errno of an error about the temporary output, or None when it is about else.

    An :class:`OSError` naming the temporary output counts; so does a write error with
    no file name (disk full, file too large), also when a library reports it in its own
    exception type with the errno in its text (safetensors: "os error 28", pyarrow:
    "[errno 28]").
    """
    found = _ERRNO_IN_TEXT.search(str(exc))
    parsed = int(found.group(1)) if found else None
    if isinstance(exc, OSError):
        code = exc.errno if exc.errno is not None else parsed
        if any(_under(n, tmp) for n in (exc.filename, exc.filename2)) or str(tmp) in str(exc):
            return code if code is not None else errno.EIO
        return code if exc.filename is None and code in _WRITE_ERRORS else None
    return parsed if parsed in _WRITE_ERRORS else None


@contextlib.contextmanager
def _named_as_output(tmp: Path, path: Path) -> Iterator[None]:
    """Errors about the temporary output (disk full, permission) name the real output.

    The temporary name (``.NAME.HOST-PID.XXXX.tmp``) means nothing to a user, and a
    write error (disk full, file too large) carries no name at all; both are raised
    again as an :class:`OSError` naming ``path``.
    """
    try:
        yield
    except Exception as exc:
        code = _write_errno(exc, tmp)
        if code is None:
            raise
        text = exc.strerror if isinstance(exc, OSError) and exc.strerror else os.strerror(code)
        raise OSError(
            code, f"{text} (while writing it; nothing was written under that name)", str(path)
        ) from None


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], force: bool = False) -> Iterator[Path]:
    """Yield a temporary file path next to ``path``; rename it to ``path`` on success."""
    path = check_writable(path, force)  # also removes what killed writers left
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        with _named_as_output(tmp_path, path):
            yield tmp_path
            if tmp_path.exists():
                _publish_mode(tmp_path, directory=False)
            os.replace(tmp_path, path)
    finally:
        if os.path.lexists(tmp_path):
            _remove(tmp_path)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str], force: bool = False) -> Iterator[Path]:
    """Yield a temporary directory next to ``path``; move it to ``path`` on success.

    With ``force``, an existing output is swapped out only after the new one is
    complete, and at every moment one of the two is under the name (see the module
    docstring), so an interruption leaves either the old or the new result.
    """
    path = check_writable(path, force)  # also removes what killed writers left
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = Path(tempfile.mkdtemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent))
    try:
        with _named_as_output(tmp_path, path):
            yield tmp_path
            _publish_mode(tmp_path, directory=True)
            for child in tmp_path.rglob("*"):
                if child.is_file() and stat.S_IMODE(child.stat().st_mode) == 0o600:
                    _publish_mode(child, directory=False)
            if os.path.lexists(path):
                _swap_in(tmp_path, path)
            else:
                os.replace(tmp_path, path)
    finally:
        if os.path.lexists(tmp_path):
            _remove(tmp_path)


def write_text(path: str | os.PathLike[str], text: str, force: bool = False) -> Path:
    """Write a text file atomically."""
    with atomic_path(path, force) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def json_safe(obj: Any) -> Any:
    """Plain JSON values: numpy scalars/arrays and tuples converted, non-finite floats -> None.

    Strict JSON has no NaN/inf; results (metrics with an undefined AUROC, say) must still
    be written and read back by any JSON reader.
    """
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
