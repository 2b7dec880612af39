"""The one error root. Every error carries its exit code; only ``cli.main`` exits."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1  # one or more cells failed (build, test or push)
    BAD_INPUT = 2  # images.yaml / images.lock / command line is wrong
    TOOL = 3  # an external command or the engine failed outside a cell
    REGISTRY = 4  # registry unreachable or refused us
    # `outdated`: apt would upgrade packages in a published image (or it is not published).
    # 100, as `dnf check-update` / `yum check-update` say "updates available".
    UPDATES_PENDING = 100


class OrchestratorError(Exception):
    """Root of every error the orchestrator raises on purpose."""

    exit_code: ExitCode = ExitCode.TOOL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def lines(self) -> list[str]:
        """What the CLI prints after "error: " (one entry per line it prefixes)."""
        return [self.message]


class ConfigError(OrchestratorError):
    """Bad images.yaml: ``file: key.path: problem; fix``."""

    exit_code = ExitCode.BAD_INPUT

    def __init__(self, file: str, key: str, problem: str, fix: str = "", line: int | None = None):
        where = f"{file}:{line}" if line else file
        text = f"{where}: {key}: {problem}" if key else f"{where}: {problem}"
        if fix:
            text += f"; {fix}"
        super().__init__(text)
        self.file, self.key, self.problem, self.fix, self.line = file, key, problem, fix, line


class ConfigProblems(ConfigError):
    """Several problems in one file, found in one pass: one line each (the CLI prints them all)."""

    def __init__(self, problems: list[ConfigError]) -> None:
        first = problems[0]
        super().__init__(first.file, first.key, first.problem, first.fix, first.line)
        self.problems = problems
        self.message = "\n".join(str(p) for p in problems)
        self.args = (self.message,)

    def lines(self) -> list[str]:
        return [str(p) for p in self.problems]


def raise_all(problems: list[ConfigError]) -> None:
    """Raise the one problem as itself, several as ConfigProblems; nothing when empty."""
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise ConfigProblems(problems)


class LockError(OrchestratorError):
    exit_code = ExitCode.BAD_INPUT


class UsageError(OrchestratorError):
    exit_code = ExitCode.BAD_INPUT


class SourceError(OrchestratorError):
    """A configured source (python.org layout mirror, pyenv, base registry) did not answer as expected."""

    exit_code = ExitCode.TOOL


class ArchiveError(OrchestratorError):
    """A distro archive (apt mirror) did not answer, or its Release did not verify."""

    exit_code = ExitCode.TOOL


class CommandError(OrchestratorError):
    """An external command exited non-zero."""

    exit_code = ExitCode.TOOL

    def __init__(self, argv: list[str], returncode: int, stderr: str, stdout: str = "") -> None:
        tail = "\n".join(stderr.strip().splitlines()[-15:])
        super().__init__(f"command failed (exit {returncode}): {' '.join(argv)}\n{tail}".rstrip())
        self.argv, self.returncode, self.stderr, self.stdout = argv, returncode, stderr, stdout


class EngineError(OrchestratorError):
    """Docker / BuildKit is missing, not running, or refused an operation."""

    exit_code = ExitCode.TOOL


class RegistryError(OrchestratorError):
    exit_code = ExitCode.REGISTRY


class RegistryAuthError(RegistryError):
    """A login is missing, refused, or cannot be read (config.json, a credential helper)."""


class RegistryUnreachable(RegistryError):
    """No answer (connection refused or reset, timeout) after every retry."""


class SupplyChainError(OrchestratorError):
    """syft or cosign could not make an SBOM, a signature or an attestation (or a key is missing)."""

    exit_code = ExitCode.TOOL


class ScanError(OrchestratorError):
    """The vulnerability scan cannot run: no scanner, a DB that is missing, corrupt, of the
    wrong checksum or too old, or a scanner that failed outside one image."""

    exit_code = ExitCode.TOOL


class PerfError(OrchestratorError):
    """The performance record could not be made: no pyperf beside the orchestrator, or a
    workload run that failed, printed no result or did other work than the other image's."""

    exit_code = ExitCode.TOOL


class NotVerified(OrchestratorError):
    """A signature or an attestation did not verify: the image is unsigned or not ours."""

    exit_code = ExitCode.FAILED
