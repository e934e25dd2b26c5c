"""``ResultWriter``: a batch's results as JSONL, crash-safe and resumable.

- Nothing is written until the batch starts, and the user's output file is replaced only when the
  batch has finished: results go to ``<output>.partial`` first and are renamed over the output at
  the end, so a failed start or a failure mid-way leaves an existing output as it was.
- Each result is one line, written and flushed as soon as it is final (the runner hands results
  over in input order), so a ``kill -9`` leaves complete lines plus at most one torn last line.
- An output named ``*.parquet`` or ``*.csv`` gets the same JSONL partial file; ``commit``
  converts it into Parquet or CSV (``llmcat.tables``) under a temporary name and renames that over
  the output.
- One writer per output: ``<output>.lock`` is locked for the whole batch (``OutputLock``).
- ``resume=True`` keeps the complete lines of ``<output>.partial`` (or of the output itself when
  there is no partial file), cuts a torn last line off, and appends after them: the caller skips
  as many inputs as there are kept records (``completed``), after checking that they match.
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
from typing import IO, Any

from pydantic import BaseModel

from .errors import ConfigError


class ResultWriter:
    """See the module docstring. Use ``completed()`` (resume), ``write()``, then ``commit()``."""

    def __init__(self, path: Path, *, resume: bool = False) -> None:
        self.path = path
        self.partial = path.with_name(path.name + ".partial")
        self.resume = resume
        self.parquet = path.suffix.lower() == ".parquet"
        self.csv = path.suffix.lower() == ".csv"
        if self.parquet:
            from .tables import need

            need("pyarrow")  # before the batch starts, not after it has run
        self._handle: IO[str] | None = None
        self._kept: list[dict[str, Any]] | None = None
        check_writable(path)
        self._lock = OutputLock(path)
        #: what the answers depend on (options, model, prompt, input), kept beside the partial
        #: file while the batch runs, so that --resume can check it (``start``)
        self.run_file = self.partial.with_name(self.partial.name + ".run.json")
        #: a digest of each input item, one line per result written, in the same order
        self.inputs_file = self.partial.with_name(self.partial.name + ".inputs")
        self._inputs: IO[str] | None = None
        #: where every record goes when all of them are errors (see the module docstring)
        self.failed_path = path.with_name(f"{path.stem}.failed{path.suffix}")
        #: the file ``commit`` wrote: ``path``, or ``failed_path``
        self.target = path
        #: after ``commit``: what the user must know about where the records went, or None
        self.notice: str | None = None
        self._records = 0  # written by this run
        self._failed = 0  # of which error records

    def completed(self) -> list[dict[str, Any]]:
        """The complete records an earlier run left (resume only; [] otherwise). A torn last
        line is cut off the partial file here."""
        if self._kept is not None:
            return self._kept
        self._kept = []
        if not self.resume:
            return self._kept
        if not self.partial.exists() and self.path.exists():
            if self.parquet or self.csv:
                from .tables import read_csv_results, read_parquet_results

                read = read_parquet_results if self.parquet else read_csv_results
                lines = [json.dumps(r) + "\n" for r in read(self.path)]
                self.partial.write_text("".join(lines), encoding="utf-8")
            else:
                shutil.copyfile(self.path, self.partial)
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

    def check_run(self, identity: dict[str, Any]) -> None:
        """On resume, check what this run's answers depend on against what the kept records
        were made with (ConfigError naming what changed). A partial file without a run file (an
        older version's, or a finished output resumed) is resumed on the caller's own checks."""
        if self.resume and self.run_file.exists():
            before = json.loads(self.run_file.read_text(encoding="utf-8"))
            now = json.loads(json.dumps(identity, default=str))
            changed = sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k))
            if changed:
                shown = "; ".join(f"{k}: {before.get(k)!r} -> {now.get(k)!r}" for k in changed[:4])
                raise ConfigError(
                    f"{self.partial} was made with other settings ({shown}); resume with the same "
                    "settings, or run without --resume"
                )

    def record_run(self, identity: dict[str, Any]) -> None:
        """Keep what this run's answers depend on beside the partial file (after the checks of a
        resume have passed, so a refused resume changes nothing)."""
        self.run_file.write_text(json.dumps(identity, default=str), encoding="utf-8")

    def kept_inputs(self) -> list[str]:
        """The input digests of the kept records (resume; [] when none were recorded)."""
        if not self.resume or not self.inputs_file.exists():
            return []
        digests = self.inputs_file.read_text(encoding="utf-8").split()
        kept = len(self.completed())
        if len(digests) < kept:
            return []  # recorded by a run that did not keep them all: nothing to check against
        with self.inputs_file.open("r+", encoding="utf-8") as handle:
            handle.truncate(sum(len(d) + 1 for d in digests[:kept]))
        return digests[:kept]

    def write(
        self,
        result: BaseModel,
        input_digest: str | None = None,
        beside: Mapping[str, Any] | None = None,
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
        if self.parquet or self.csv:
            from .tables import write_csv_results, write_parquet

            write = write_parquet if self.parquet else write_csv_results
            with self.partial.open(encoding="utf-8") as handle:
                write([json.loads(line) for line in handle if line.strip()], self.target)
            self.partial.unlink()
        else:
            os.replace(self.partial, self.target)
        self._close_inputs()
        for sidecar in (self.run_file, self.inputs_file):
            with contextlib.suppress(OSError):
                sidecar.unlink()
        self._lock.release()
        return self.target

    def close(self) -> None:
        """Stop without committing: the partial file stays for ``--resume``."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        self._close_inputs()
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
        handle = self.path.open("a", encoding="utf-8")
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


#: First characters that make a spreadsheet read a cell as a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> object:
    """A CSV cell that a spreadsheet shows as text: a string that starts like a formula gets a
    leading apostrophe (OWASP's neutralisation); other values are kept."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def formula_text(value: object) -> object:
    """The text ``spreadsheet_safe`` neutralised, as it was: a review file read back as examples
    gives the product's own title."""
    if isinstance(value, str) and value[:1] == "'" and value[1:].startswith(FORMULA_STARTS):
        return value[1:]
    return value


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
    "FORMULA_STARTS",
    "ResultWriter",
    "check_writable",
    "digest_of",
    "formula_text",
    "spreadsheet_safe",
]
