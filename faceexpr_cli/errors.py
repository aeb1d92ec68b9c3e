"""The one error table.

Core code raises these typed errors, each carrying a hint; the CLI turns any of them into one line on stderr
and the class's exit code (2 for usage mistakes, 1 for failures). ``FX_DEBUG=1`` shows the traceback instead.
Feature packages subclass the bases here rather than inventing new exit-code rules.
"""

from __future__ import annotations

from pathlib import Path


class FxError(Exception):
    """Base of every error a user may see. ``exit_code`` 1 means the work failed."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        text = self.message.strip().replace("\n", " ")
        return f"{text} ({self.hint})" if self.hint else text


class UsageError(FxError):
    """The user asked for something that cannot be: bad argument, unknown name, bad config."""

    exit_code = 2


class MissingFileError(UsageError):
    def __init__(self, path: str | Path, what: str = "file", hint: str | None = None):
        super().__init__(f"{what} not found: {path}", hint or "check the path")
        self.path = str(path)


class UnknownNameError(UsageError):
    def __init__(self, kind: str, name: str, known: list[str] | tuple[str, ...]):
        listed = ", ".join(sorted(known)) or "none"
        super().__init__(f"unknown {kind} '{name}'", f"known: {listed}")
        self.name = name


class ConfigError(UsageError):
    """A model card, recipe or override that does not validate; the message names the file and key."""


class MediaError(FxError):
    """A file that is not a readable video/audio/image, or an ffmpeg run that failed."""

    def __init__(self, path: str | Path, problem: str, hint: str | None = None):
        super().__init__(f"{path}: {problem}", hint)
        self.path = str(path)
        self.problem = problem


class DependencyError(FxError):
    """A required program, package or provider is missing; the hint says how to install it."""


class WeightsNotFoundError(FxError):
    """Model weights that are not on this machine; the hint names the download command or where to put them."""


class CheckpointError(FxError):
    """A checkpoint that does not fit the model or card it is loaded into."""


class DataError(FxError):
    """A dataset, transcript or manifest whose content is unusable."""


class DownloadError(FxError):
    """A fetch that failed for good (after retries, or a permanent error)."""


class BatchFailures(FxError):
    """A batch run finished but some items failed; they are recorded in the run's manifest."""

    def __init__(self, failed: int, total: int, manifest: str | Path | None = None):
        where = f", see {manifest}" if manifest else ""
        super().__init__(f"{failed} of {total} items failed{where}")
        self.failed = failed
        self.total = total


class Interrupted(FxError):
    """Ctrl-C: what finished is recorded and the run can be resumed; one line, exit 130 (the shell's SIGINT code)."""

    exit_code = 130

    def __init__(self, message: str = "interrupted", hint: str | None = None):
        super().__init__(message, hint)


class NoFaceFound(DataError):
    """A face run over which not one input showed a usable face: the run wrote nothing to train on."""

    def __init__(self, inputs: int, manifest: str | Path | None = None):
        where = f" (see {manifest})" if manifest else ""
        super().__init__(f"no face found in any of the {inputs} inputs{where}",
                         "check that the videos show a face; lower --min-face or --score-threshold")


def raise_if_no_face(statuses: list[str], manifest: str | Path | None = None) -> None:
    """NoFaceFound when there are inputs, none is ``ok`` and some are ``no_face`` (the others were skipped)."""
    if statuses and "ok" not in statuses and "no_face" in statuses:
        raise NoFaceFound(sum(1 for s in statuses if s != "skipped"), manifest)
