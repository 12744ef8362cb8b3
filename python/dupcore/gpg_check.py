"""duplicity 3.2's start-up gpg test, run alongside duplicity's start-up.

Before any action, duplicity 3.2's ``gpg.check_gpg()`` encrypts ``test`` with
``gpg --symmetric`` (loopback pinentry, passphrase ``test``) and stops with a ``FatalError`` if
gpg fails. That gpg run hashes its passphrase with the S2K count gpg-agent calibrated (and, if
the agent is not running yet, waits for the agent to start and calibrate): 0.25 s to 1 s of a
single core, during which duplicity waits.

When ``duplicity.gpg`` is imported, this module starts the same gpg command that the check will
run, as the command line lets it be foreseen (the gpg found on ``PATH``, ``--gpg-options``),
so that it runs on another core while duplicity imports its modules and parses its options.
``check_gpg`` itself stays duplicity's: only when it calls ``gpginterface.GnuPG.run`` with
exactly the command, environment and working directory of the run started ahead does it get
that run's exit status and output, as a ``gpginterface.Process`` would give them. Anything else
(other options, a changed environment, other input, no run started) runs gpg as stock does, so
the check passes or fails, logs and raises exactly as stock.

No run is started outside the ``duplicity`` command (a program importing duplicity, such as
``python -m dupcore status``), nor where the command line shows that duplicity will not run the
test (``--no-encryption``, ``--use-agent``, ``--use-gpgsm``, ``--gpg-binary``, help or version).
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from types import ModuleType

from dupcore.stock import Stock

#: What ``check_gpg`` passes to ``GnuPG.run`` for its test, and what it writes to gpg's stdin.
TEST_COMMANDS = ["--symmetric", "-o", "-"]
TEST_HANDLES = ["stdin", "stdout", "stderr"]
TEST_INPUT = b"test"
#: The options ``check_gpg`` adds for its test (duplicity 3.2.x).
TEST_OPTIONS = ["--no-secmem-warning", "--pinentry-mode", "loopback", "--passphrase", "test"]
#: Command-line options with which duplicity runs no test, or another gpg than the one guessed.
NO_TEST = ("--no-encryption", "--use-agent", "--use-gpgsm", "--gpg-binary", "-h", "--help",
           "--version")


class _Ahead:
    """The test's gpg run, started ahead: its command, environment, and outcome once done."""

    def __init__(self, command: list[str]):
        self.command = command
        self.env = dict(os.environ)
        self.cwd = os.getcwd()
        # as gpginterface's fork and exec: signals Python ignores stay ignored in gpg
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, restore_signals=False)
        self.out = self.err = b""
        self.thread = threading.Thread(target=self._finish, name="dupcore-gpg-check",
                                       daemon=True)
        self.thread.start()

    def _finish(self):
        try:
            self.out, self.err = self.proc.communicate(TEST_INPUT)
        except OSError:
            self.proc.wait()

    def matches(self, command, env, cwd) -> bool:
        """Whether a run of ``command`` now would be this one."""
        return command == self.command and env == self.env and cwd == self.cwd

    def status(self) -> int:
        """The exit status as ``os.waitpid`` gives it (what ``gpginterface`` checks)."""
        self.thread.join()
        code = self.proc.returncode
        return code << 8 if code >= 0 else -code


_ahead: _Ahead | None = None
#: Why no run was started ahead.
_not_started = ""


def _gpg_options(argv: list[str]) -> str:
    """``config.gpg_options`` as duplicity's ``SplitOptionsAction`` builds it from ``argv``."""
    opts = ""
    for i, arg in enumerate(argv):
        if arg.startswith("--gpg-options="):
            value = arg.split("=", 1)[1]
        elif arg == "--gpg-options" and i + 1 < len(argv):
            value = argv[i + 1]
        else:
            continue
        value = value.strip('"').strip("'")
        opts = value if not opts else f"{opts} {value}"
    return opts


def foreseen_command(gpginterface: ModuleType, binary: str, options: str) -> list[str]:
    """The command ``check_gpg`` runs for gpg ``binary`` with ``--gpg-options`` ``options``."""
    gnupg = gpginterface.GnuPG()
    gnupg.call = binary
    for opt in options.split():
        gnupg.options.extra_args.append(opt)
    gnupg.options.meta_interactive = 0
    gnupg.options.extra_args.extend(TEST_OPTIONS)
    return [gnupg.call] + gnupg.options.get_args() + TEST_COMMANDS


class _Stdin:
    """gpg's stdin as ``check_gpg`` sees it: what it writes is kept."""

    def __init__(self):
        self.data = b""

    def write(self, data):
        self.data += bytes(data)
        return len(data)

    def close(self):
        pass


class _Output:
    """gpg's stdout or stderr, read once the run ended."""

    def __init__(self, process, name):
        self.process, self.name = process, name

    def read(self, *_size):
        return self.process.output(self.name)

    def close(self):
        pass


class _Process:
    """A ``gpginterface.Process`` for the run started ahead; should ``check_gpg`` write other
    input than that run got, gpg runs again with it, as stock."""

    def __init__(self, ahead: _Ahead, gnupg, run):
        self.ahead, self.gnupg, self.run = ahead, gnupg, run
        self.stdin = _Stdin()
        self.handles = {"stdin": self.stdin, "stdout": _Output(self, "stdout"),
                        "stderr": _Output(self, "stderr")}
        self.real = None  # (stdout, stderr, status) of a run with other input

    def _outcome(self):
        if self.stdin.data == TEST_INPUT:
            return self.ahead.out, self.ahead.err, self.ahead.status()
        if self.real is None:
            proc = self.run(self.gnupg, list(TEST_COMMANDS), create_fhs=list(TEST_HANDLES))
            proc.handles["stdin"].write(self.stdin.data)
            proc.handles["stdin"].close()
            out = proc.handles["stdout"].read()
            err = proc.handles["stderr"].read()
            proc.handles["stdout"].close()
            proc.handles["stderr"].close()
            proc.thread.join()
            self.real = (out, err, proc.returned)
        return self.real

    def output(self, name):
        out, err, _status = self._outcome()
        return out if name == "stdout" else err

    def wait(self):
        """As ``gpginterface.Process.wait``: an ``IOError`` if gpg exited non-zero."""
        status = self._outcome()[2]
        if status != 0:
            raise OSError(f"GnuPG exited non-zero, with code {status >> 8:d}")


def _serving(gpginterface: ModuleType, run):
    """``GnuPG.run`` that hands the test's command the run started ahead, once."""

    def serve(self, gnupg_commands, args=None, create_fhs=None, attach_fhs=None):
        global _ahead
        ahead = _ahead
        if (ahead is not None and gnupg_commands == TEST_COMMANDS and not args
                and create_fhs == TEST_HANDLES and not attach_fhs and self.passphrase is None):
            command = [self.call] + self.options.get_args() + list(gnupg_commands)
            if ahead.matches(command, dict(os.environ), os.getcwd()):
                _ahead = None
                return _Process(ahead, self, run)
        return run(self, gnupg_commands, args, create_fhs, attach_fhs)

    return serve


def _duplicity_command() -> bool:
    """Whether this process is the ``duplicity`` command (its script, or ``-m duplicity``)."""
    prog = sys.argv[0] if sys.argv else ""
    name, parent = os.path.basename(prog), os.path.basename(os.path.dirname(prog))
    return name == "duplicity" or (name == "__main__.py" and parent == "duplicity")


def start(module: ModuleType, adapter) -> str:
    """Hook on ``duplicity.config`` (which sets ``XDG_*`` in the environment gpg inherits):
    start the test's gpg run as the command line foresees it."""
    global _ahead, _not_started
    if not _duplicity_command():
        _not_started = "not the duplicity command"
        raise Stock(_not_started)
    argv = sys.argv[1:]
    if not argv or any(a.split("=", 1)[0] in NO_TEST for a in argv):
        _not_started = "the command line runs no gpg test (or another gpg)"
        raise Stock(_not_started)
    from duplicity import gpginterface, util

    binary = util.which("gpg")
    if binary is None:
        _not_started = "no gpg on PATH"
        raise Stock(_not_started)
    try:
        _ahead = _Ahead(foreseen_command(gpginterface, binary, _gpg_options(argv)))
    except (OSError, ValueError) as exc:
        _not_started = f"gpg could not be started ahead: {exc}"
        raise Stock(_not_started) from None
    return "the start-up gpg test runs alongside duplicity's start-up"


def install_gpg(module: ModuleType, adapter) -> str:
    """Hook on ``duplicity.gpg`` (which ``duplicity.config`` imports before it sets the
    environment): let ``check_gpg`` take the run started ahead, if there is one by then."""
    check = getattr(module, "check_gpg", None)
    consts = set()
    for c in getattr(getattr(check, "__code__", None), "co_consts", ()):
        consts.update(c if isinstance(c, tuple) else (c,))
    if not all(c in consts for c in ("--symmetric", "loopback", "test")):
        raise Stock("this duplicity runs no gpg test at start-up")
    from duplicity import gpginterface

    run = gpginterface.GnuPG.run

    def check_gpg():
        gpginterface.GnuPG.run = _serving(gpginterface, run)
        try:
            return check()
        finally:
            gpginterface.GnuPG.run = run

    check_gpg.__doc__ = check.__doc__
    module.check_gpg = check_gpg
    return "check_gpg takes the test run started ahead"
