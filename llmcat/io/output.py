"""``ResultWriter``: a batch's results as JSONL, crash-safe and resumable.

- Nothing is written until the batch starts, and the user's output file is replaced only when the
  batch has finished: results go to ``<output>.partial`` first and are renamed over the output at
  the end, so a failed start or a failure mid-way leaves an existing output as it was.
- Each result is one line, written and flushed as soon as it is final (the runner hands results
  over in input order), so a ``kill -9`` leaves complete lines plus at most one torn last line.
- An output named ``*.parquet`` or ``*.csv`` gets the same JSONL partial file; ``commit``
  converts it into Parquet or CSV (``llmcat.io.tables``) under a temporary name and renames that over
  the output.
- One writer per output: ``<output>.lock`` is locked for the whole batch (``OutputLock``).
- ``resume=True`` keeps the complete lines of ``<output>.partial`` (or of the output itself when
  there is no partial file), cuts a torn last line off, and appends after them: the caller skips
  as many inputs as there are kept records (``completed``), after checking that they match.
  What the records were made with (``record_run``: options, model, input files) and a digest of
  each record's input are kept beside the partial file, and beside a finished output in
  ``<output>.run.json``; a resume that cannot check what it would keep (no run record, a
  corrupt one, records without input digests) is refused, never taken on trust.
- ``check_paths``: the files a command writes differ from every file it reads and from each
  other (their partial, lock and run files included), checked before anything is written.
- A batch whose every record is an error (a server down, a wrong model: nothing was classified)
  never becomes the output: ``commit`` puts it beside it as ``<stem>.failed<suffix>``
  (``out.failed.jsonl``) and ``notice`` says so, so a good earlier output is never replaced by
  error records.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from pydantic import BaseModel

from llmcat.errors import ConfigError


class ResultWriter:
    """See the module docstring. Use ``completed()`` (resume), ``write()``, then ``commit()``."""

    def __init__(self, path: Path, *, resume: bool = False) -> None:
        self.path = path
        self.partial = path.with_name(path.name + ".partial")
        self.resume = resume
        self.parquet = path.suffix.lower() == ".parquet"
        self.csv = path.suffix.lower() == ".csv"
        if self.parquet:
            from llmcat.io.tables import need

            need("pyarrow")  # before the batch starts, not after it has run
        self._handle: IO[str] | None = None
        self._kept: list[dict[str, object]] | None = None
        check_writable(path)
        self._lock = OutputLock(path)
        #: what the answers depend on (options, model, prompt, input), kept beside the partial
        #: file while the batch runs, so that --resume can check it (``start``)
        self.run_file = self.partial.with_name(self.partial.name + ".run.json")
        #: a digest of each input item, one line per result written, in the same order
        self.inputs_file = self.partial.with_name(self.partial.name + ".inputs")
        #: the run record of a finished output (its run file and input digests), for --resume
        self.finished_run_file = run_record_path(path)
        self._inputs: IO[str] | None = None
        #: where every record goes when all of them are errors (see the module docstring)
        self.failed_path = path.with_name(f"{path.stem}.failed{path.suffix}")
        #: the file ``commit`` wrote: ``path``, or ``failed_path``
        self.target = path
        #: after ``commit``: what the user must know about where the records went, or None
        self.notice: str | None = None
        self._records = 0  # written by this run
        self._adopted = False  # a finished output was copied to the partial file (resume)
        self._failed = 0  # of which error records

    def completed(self) -> list[dict[str, object]]:
        """The complete records an earlier run left (resume only; [] otherwise). A torn last
        line is cut off the partial file here."""
        if self._kept is not None:
            return self._kept
        self._kept = []
        if not self.resume:
            return self._kept
        self._adopt_finished()
        if not self.partial.exists():
            return self._kept
        good_end = 0
        with self.partial.open("rb") as handle:
            for n, line in enumerate(handle, 1):
                if not line.endswith(b"\n"):
                    break  # the torn last line of a killed run
                try:
                    record = json.loads(line)
                except ValueError:
                    if handle.read(1):  # not the last line: the file is not ours to continue
                        raise ConfigError(
                            f"{self.partial} line {n} is not JSON; it cannot be resumed - "
                            "move it away or run without --resume"
                        ) from None
                    break
                if not isinstance(record, dict):
                    raise ConfigError(f"{self.partial} line {n} is not a result record")
                self._kept.append(record)
                good_end += len(line)
        with self.partial.open("r+b") as handle:
            handle.truncate(good_end)
        return self._kept

    def _adopt_finished(self) -> None:
        """Resuming a finished output: it becomes the partial file, with the run record and
        input digests it was committed with; without them it cannot be checked and is refused."""
        if self.partial.exists() or not self.path.exists():
            return
        record = _read_json(self.finished_run_file, f"the run record of {self.path}")
        if record is None:
            raise ConfigError(
                f"{self.path} has no run record ({self.finished_run_file.name}): what its rows "
                "were made with cannot be checked, so it cannot be resumed - run without --resume"
            )
        inputs = record.get("inputs")
        if not isinstance(record.get("run"), dict) or not isinstance(inputs, list):
            raise ConfigError(
                f"{self.finished_run_file} is not a run record of llmcat; run without --resume"
            )
        if self.parquet or self.csv:
            from llmcat.io.tables import read_csv_results, read_parquet_results

            read = read_parquet_results if self.parquet else read_csv_results
            lines = [json.dumps(r) + "\n" for r in read(self.path)]
            self.partial.write_text("".join(lines), encoding="utf-8")
        else:
            shutil.copyfile(self.path, self.partial)
        self.run_file.write_text(json.dumps(record["run"]), encoding="utf-8")
        self.inputs_file.write_text("".join(f"{d}\n" for d in inputs), encoding="utf-8")
        self._adopted = True

    def check_run(self, identity: Mapping[str, object]) -> None:
        """On resume, check what this run's answers depend on against what the kept records
        were made with (ConfigError naming what changed). Records without a run record (an
        older version's partial file, a finished output without its ``.run.json``) or with a
        corrupt one are refused: what they were made with cannot be checked."""
        if not self.resume:
            return
        self._adopt_finished()
        before = _read_json(self.run_file, f"the run record of {self.partial}")
        if before is None:
            if not self.partial.exists() or self.partial.stat().st_size == 0:
                return  # nothing to keep: a fresh start
            raise ConfigError(
                f"{self.partial} has no run record ({self.run_file.name}): what its records were "
                "made with cannot be checked, so they cannot be kept - run without --resume"
            )
        now = json.loads(json.dumps(identity, default=str))
        changed = sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k))
        if changed:
            shown = "; ".join(f"{k}: {before.get(k)!r} -> {now.get(k)!r}" for k in changed[:4])
            raise ConfigError(
                f"{self.partial} was made with other settings ({shown}); resume with the same "
                "settings, or run without --resume"
            )

    def record_run(self, identity: Mapping[str, object]) -> None:
        """Keep what this run's answers depend on beside the partial file (after the checks of a
        resume have passed, so a refused resume changes nothing)."""
        self.run_file.write_text(json.dumps(identity, default=str), encoding="utf-8")

    def kept_inputs(self) -> list[str]:
        """The input digests of the kept records (resume; [] when none are kept). Records
        without their digests cannot be checked against the input: ConfigError."""
        kept = len(self.completed())
        if not self.resume or not kept:
            return []
        try:
            digests = self.inputs_file.read_text(encoding="utf-8").split()
        except (OSError, UnicodeDecodeError):
            digests = []
        if len(digests) < kept:
            raise ConfigError(
                f"{self.partial} holds {kept} records but {self.inputs_file.name} the inputs of "
                f"only {len(digests)}: the records cannot be checked against the input - run "
                "without --resume"
            )
        with self.inputs_file.open("r+", encoding="utf-8") as handle:
            handle.truncate(sum(len(d) + 1 for d in digests[:kept]))
        return digests[:kept]

    def write(
        self,
        result: BaseModel,
        input_digest: str | None = None,
        beside: Mapping[str, object] | None = None,
    ) -> None:
        """Append one final result and flush it to the operating system. Never fails on what a
        record holds: text no file can hold as UTF-8 (a lone surrogate in a caller's id) is
        written as a JSON escape. ``input_digest`` (``digest_of``) is recorded beside it;
        ``beside``: fields of the input to show with the result (its title), after the id."""
        if input_digest is not None:
            if self._inputs is None:
                self._inputs = self.inputs_file.open("a" if self.resume else "w", encoding="utf-8")
            self._inputs.write(input_digest + "\n")
            self._inputs.flush()
        if self._handle is None:
            self._handle = self.partial.open("a" if self.resume else "w", encoding="utf-8")
        try:
            line = result.model_dump_json()
        except ValueError:  # pydantic refuses lone surrogates; json escapes them
            line = json.dumps(result.model_dump(mode="python"), ensure_ascii=True, default=str)
        if beside:
            record = json.loads(line)
            first = dict(list(record.items())[:1])
            line = json.dumps({**first, **beside, **record}, ensure_ascii=False)
        self._handle.write(line + "\n")
        self._handle.flush()
        self._records += 1
        self._failed += getattr(result, "error", None) is not None

    def all_failed(self) -> bool:
        """Whether the batch has records and every one is an error (kept ones included)."""
        kept = self._kept or []
        records = len(kept) + self._records
        failed = sum(r.get("error") is not None for r in kept) + self._failed
        return records > 0 and failed == records

    def commit(self) -> Path:
        """The batch is complete: make the output file the partial one, atomically, and return
        it; a batch of error records only goes to ``failed_path`` instead (``notice``)."""
        if self._handle is None:  # nothing new was written (an empty input, a finished resume)
            if not self.resume or not self.partial.exists():
                self.partial.write_text("", encoding="utf-8")
        else:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
            self._handle = None
        failed = self.all_failed()
        self.target = self.failed_path if failed else self.path
        if failed:
            kept = "was left as it was" if self.path.exists() else "was not written"
            self.notice = (
                f"every record is an error record: they are in {self.failed_path}; "
                f"{self.path} {kept}"
            )
        self._close_inputs()
        record = None if failed else self._run_record()
        if not failed:  # the old record would vouch for the new rows until replaced below
            with contextlib.suppress(OSError):
                self.finished_run_file.unlink()
        if self.parquet or self.csv:
            from llmcat.io.tables import write_csv_results, write_parquet

            write = write_parquet if self.parquet else write_csv_results
            with self.partial.open(encoding="utf-8") as handle:
                write([json.loads(line) for line in handle if line.strip()], self.target)
            self.partial.unlink()
        else:
            os.replace(self.partial, self.target)
        if record is not None:
            tmp = self.finished_run_file.with_name(f".{self.finished_run_file.name}.tmp")
            tmp.write_text(json.dumps(record), encoding="utf-8")
            os.replace(tmp, self.finished_run_file)
        for sidecar in (self.run_file, self.inputs_file):
            with contextlib.suppress(OSError):
                sidecar.unlink()
        self._lock.release()
        return self.target

    def _run_record(self) -> dict[str, object] | None:
        """What ``<output>.run.json`` keeps: the run file and every record's input digest (None
        for a run that recorded no run file)."""
        run = _read_json(self.run_file, "the run record")
        if run is None:
            return None
        inputs = (
            self.inputs_file.read_text(encoding="utf-8").split()
            if self.inputs_file.exists()
            else []
        )
        return {"run": run, "inputs": inputs}

    def close(self) -> None:
        """Stop without committing: the partial file stays for ``--resume`` (unless it is a copy
        of the finished output that nothing was added to: a refused resume changes nothing)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        self._close_inputs()
        if self._adopted and not self._records:
            for copy in (self.partial, self.run_file, self.inputs_file):
                with contextlib.suppress(OSError):
                    copy.unlink()
        self._lock.release()

    def _close_inputs(self) -> None:
        if self._inputs is not None:
            self._inputs.close()
            self._inputs = None


def digest_of(item: object) -> str:
    """A short digest of an input item as read (a record, a Product, a title or an error), so
    that a resumed batch knows its kept records were made from the same inputs."""
    if isinstance(item, BaseModel):
        text = item.model_dump_json()
    elif isinstance(item, BaseException):
        text = f"{type(item).__name__}: {item}"
    else:
        text = json.dumps(item, sort_keys=True, default=str, ensure_ascii=True)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


class OutputLock:
    """One writer per output: an exclusive lock on ``<output>.lock``, taken before anything is
    written and released when the batch commits or stops. A second writer fails at once with a
    ConfigError instead of interleaving its results with the first one's. (On a platform without
    ``fcntl`` there is no lock.)"""

    def __init__(self, output: Path) -> None:
        self.path = output.with_name(output.name + ".lock")
        self._handle: IO[str] | None = None
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            return
        try:
            # never through a symbolic link: the lock file is created and removed by llmcat
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            why = (
                "is a folder"
                if self.path.is_dir()
                else "is a symbolic link"
                if self.path.is_symlink()
                else f"cannot be created ({exc.strerror})"
            )
            raise ConfigError(
                f"the lock file {self.path} {why}; move it away, or write somewhere else"
            ) from None
        handle = os.fdopen(fd, "a", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise ConfigError(
                f"another llmcat is writing {output} (it holds {self.path}); wait for it to "
                "finish, or write somewhere else"
            ) from None
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()
            self._handle.close()  # closing the file releases the lock
            self._handle = None


def run_record_path(output: Path) -> Path:
    """Where a finished output keeps what it was made with (``<output>.run.json``)."""
    return output.with_name(output.name + ".run.json")


def _read_json(path: Path, what: str) -> dict[str, object] | None:
    """A JSON object from ``path``; None when there is no file; ConfigError when it is not one
    (a torn or edited run record is refused, never a traceback)."""
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from None
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise ConfigError(
            f"{path} ({what}) is corrupt: not a JSON object; move it away and run without --resume"
        )
    return value


def own_files(output: Path) -> list[Path]:
    """The files writing ``output`` may create or replace: the output itself, its partial,
    lock and run files, and where a failed run's records go."""
    partial = output.with_name(output.name + ".partial")
    return [
        output,
        partial,
        output.with_name(output.name + ".lock"),
        partial.with_name(partial.name + ".run.json"),
        partial.with_name(partial.name + ".inputs"),
        run_record_path(output),
        output.with_name(f"{output.stem}.failed{output.suffix}"),
    ]


def check_paths(outputs: Mapping[str, Path | None], inputs: Mapping[str, Path | None]) -> None:
    """The files a command writes (``outputs``: flag -> path) are distinct from each other and
    from every file it reads (``inputs``), their partial, lock and run files included; a
    ConfigError naming both flags otherwise. ``-`` (stdout/stdin) and None are skipped; the
    same file under two names (a symbolic or hard link) counts as the same."""
    written: dict[Path, str] = {}
    for flag, path in outputs.items():
        if path is None or str(path) == "-":
            continue
        for own in own_files(path.resolve()):
            other = _same(own, written)
            if other is not None and other != flag:
                raise ConfigError(
                    f"{flag} and {other} name the same file ({path}); give each its own"
                )
            written.setdefault(own, flag)
    for flag, path in inputs.items():
        if path is None or str(path) == "-":
            continue
        other = _same(path.resolve(), written)
        if other is not None:
            raise ConfigError(
                f"{other} {path} is the same file as {flag}, which this command reads: "
                "writing it would destroy it; write somewhere else"
            )


def _same(path: Path, seen: Mapping[Path, str]) -> str | None:
    """The flag of a path in ``seen`` that is ``path`` (by name, or by file when both exist)."""
    if path in seen:
        return seen[path]
    if path.exists():
        for other, flag in seen.items():
            with contextlib.suppress(OSError):
                if other.exists() and os.path.samefile(path, other):
                    return flag
    return None


def check_writable(path: Path) -> None:
    """ConfigError unless ``path`` can be written as a file (its folder is created if needed)."""
    if path.is_dir():
        raise ConfigError(f"output {path} is a folder; give a file name")
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the output folder {folder}: {exc.strerror}") from None
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ConfigError(f"output {path} is not writable")


__all__ = [
    "ResultWriter",
    "check_paths",
    "check_writable",
    "digest_of",
    "own_files",
    "run_record_path",
]
