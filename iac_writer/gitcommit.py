"""Commit mode: commit a planned tfvars change on a branch of the IaC git repository.

For Atlantis / pull-request workflows forescale does not apply anything: it commits the
patched variable file on a branch and leaves review, plan and apply to the PR pipeline.
This is the only module in forescale that runs ``git``; every command goes through
:meth:`_Git.run`, which starts it with :func:`forescale.iac_writer.process.run_process`.

The user's checkout is never touched: not the working tree, not the index, not ``HEAD``.
The commit is built with plumbing only::

    git hash-object -w --stdin --no-filters        new file bytes -> blob (no eol/clean filters)
    GIT_INDEX_FILE=<private temp dir>/index
        git read-tree <parent>                     a scratch index holding the parent's tree
        git update-index --cacheinfo <mode>,<blob>,<path>   the file's mode is kept
        git write-tree
    git commit-tree <tree> -p <parent> -F -        author/committer from the arguments
    git update-ref -m <reflog> refs/heads/<branch> <commit> <old tip, or zeros if new>

``update-ref`` is a compare-and-swap on the branch: if anyone moved (or created) the branch
after forescale read it, git refuses and :class:`~forescale.errors.GitError` says so; the
branch is left where the other writer put it. Objects written before a failure are
unreferenced and go away with ``git gc``.

Which parent
    If ``refs/heads/<branch>`` exists, the commit goes on top of its tip, whatever ``base``
    says: ``base`` is only where a *new* branch starts. Re-basing an existing branch onto
    ``base`` would throw away the commits already on it (and under an open PR it needs a
    force-push), so forescale never rewrites a branch; delete or merge the branch to start
    again from ``base``. ``base`` is still resolved every time, so a typo fails at once.

What gets committed
    ``change.new_bytes`` were computed from bytes hashing to ``change.old_sha256``. They are
    committed only if the parent's blob at that path has exactly that SHA-256, so the commit
    changes the variable's characters and nothing else in that file. Otherwise
    :class:`~forescale.errors.TfvarsConflict` asks to re-plan: plan on the branch's version
    with :func:`parent_file` + :func:`forescale.iac_writer.tfvars.patch`. That is also
    the way to stack a second change on the branch, and to plan in repositories whose eol conversion
    or clean/smudge filters make the checkout differ from the committed bytes.

Extra files (``extra_files``, e.g. the proposal ``FORESCALE_PR.md`` beside the variable file)
    go into the same single commit, whole: forescale owns them, so each is added if the
    parent has no such path or replaced if it has one as a regular file (its mode kept; a
    new file is ``100644``). They are never the variable file and have no compare-and-swap
    of their own; the variable file's check and the branch's compare-and-swap hold for the
    whole commit. The commit touches the variable file and these paths, nothing else.

Refused with :class:`~forescale.errors.GitError`: a branch name ``git check-ref-format
--branch`` rejects (or one starting with ``refs/``, which would create
``refs/heads/refs/...``); a branch checked out in any worktree of the repository (moving it
would leave that checkout's index and files out of step, which is why ``git branch -f``
refuses too; someone checking it out *while* forescale commits cannot be prevented); a path
that is not a tracked regular file in the parent commit (untracked, a symlink, a directory,
a submodule); a file outside the repository.

Environment
    Commands run in the repository's top level, as argument lists (never a shell), each in
    its own process group, within one overall time limit; past it the running command is
    stopped with SIGINT, then SIGTERM, then SIGKILL, 2 s apart (git removes its ``*.lock``
    files on SIGINT and SIGTERM). Output beyond ``STDOUT_MAX_BYTES`` (256 MiB; a file
    read with ``cat-file``) is an error, not unbounded memory. The inherited environment loses
    every ``GIT_*`` variable (a ``GIT_DIR`` or ``GIT_INDEX_FILE`` from a calling hook would
    redirect the commands) and gets ``GIT_TERMINAL_PROMPT=0``, ``GIT_CONFIG_NOSYSTEM=1``,
    ``GIT_CONFIG_GLOBAL=/dev/null`` (git >= 2.32; older git still reads ``~/.gitconfig``),
    ``GIT_LITERAL_PATHSPECS=1`` and ``LC_ALL=C``. The repository's own ``.git/config`` and
    hooks (only ``reference-transaction`` runs for ``update-ref``) still apply. Without the
    global config a ``safe.directory`` entry there is not seen either: run forescale as the
    user that owns the checkout. Commits are not signed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Final, Protocol

from forescale.errors import GitError, TfvarsConflict
from forescale.iac_writer.process import TAIL_LINES, StopPolicy, run_process

__all__ = [
    "CommitResult",
    "ExtraFile",
    "ParentFile",
    "ProposedFile",
    "commit_change",
    "parent_file",
]

_log = logging.getLogger(__name__)

STDOUT_MAX_BYTES: Final = 256 * 1024 * 1024
"""The most standard output of one git command that is read (bytes)."""
# git removes its *.lock files on SIGINT and SIGTERM alike (sigchain_push_common).
_STOP: Final = StopPolicy(
    interrupt_grace_seconds=2.0, term_grace_seconds=2.0, kill_wait_seconds=10.0
)
_REGULAR_MODES: Final = frozenset({"100644", "100755"})
_FORCED_ENV: Final = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    # A path is a path, not a pathspec: "*.tfvars" or ":(glob)x" must not match others.
    "GIT_LITERAL_PATHSPECS": "1",
    # Stable English messages in errors (and for the hints matched below).
    "LC_ALL": "C",
}
# The scratch index lives in a temp dir: keep all of it there (no shared split-index file
# in .git, no fsmonitor daemon queries for an index that has no working tree).
_INDEX_CONFIG: Final = (
    "-c",
    "core.splitIndex=false",
    "-c",
    "core.fsmonitor=false",
    "-c",
    "core.untrackedCache=false",
)


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, kw_only=True, slots=True)
class CommitResult:
    """The commit :func:`commit_change` made.

    ``commit_sha`` is the new tip of ``refs/heads/<branch>``, ``parent_sha`` its only parent
    (the previous tip, or ``base`` when ``created_branch``), ``path_in_repo`` the file's path
    relative to the repository's top level, with ``/`` separators; ``extra_paths`` those of
    the extra files committed with it, in the order given.
    """

    branch: str
    commit_sha: str
    parent_sha: str
    path_in_repo: str
    created_branch: bool
    extra_paths: tuple[str, ...] = ()


# --------------------------------------------------------------------------- public API


class FileChange(Protocol):
    """A planned edit of one file to commit (:class:`~forescale.iac_writer.tfvars.TfvarsChange`
    or :class:`ProposedFile`): the bytes it was planned on and the new bytes."""

    @property
    def path(self) -> str: ...

    @property
    def address(self) -> str: ...

    @property
    def new_value(self) -> int: ...

    @property
    def old_sha256(self) -> str: ...

    @property
    def new_bytes(self) -> bytes: ...

    @property
    def changed(self) -> bool: ...


@dataclass(frozen=True, kw_only=True, slots=True)
class ProposedFile:
    """Any target's edit as a :class:`FileChange` (several variables, other formats)."""

    path: str
    address: str
    new_value: int
    old_sha256: str
    new_bytes: bytes

    @property
    def changed(self) -> bool:
        return hashlib.sha256(self.new_bytes).hexdigest() != self.old_sha256


@dataclass(frozen=True, kw_only=True, slots=True)
class ExtraFile:
    """A whole file forescale owns, committed with a change (``path`` as on disk, inside the
    repository; it need not exist in the checkout)."""

    path: str
    data: bytes


def commit_change(
    change: FileChange,
    *,
    repo: Path | None = None,
    branch: str,
    message: str,
    author_name: str = "forescale",
    author_email: str = "forescale@localhost",
    base: str = "HEAD",
    git: str = "git",
    timeout: float = 60,
    extra_files: Sequence[ExtraFile] = (),
) -> CommitResult:
    """Commit ``change.new_bytes`` at ``change.path`` as one new commit on ``branch``.

    ``repo`` is any directory of the git repository (default: the one holding
    ``change.path``); ``branch`` a branch name (``forescale/capacity``, not
    ``refs/heads/...``), created from ``base`` if it does not exist and extended from its
    tip if it does (``base`` is then not used; see the module docstring). ``message`` is
    the whole commit message, written by the caller: what changed, when and why. Author
    and committer are ``author_name <author_email>``. ``extra_files`` are added or replaced
    whole in the same commit (see the module docstring). ``timeout`` bounds the whole call,
    in seconds.

    Raises :class:`~forescale.errors.TfvarsConflict` if the file in the parent commit is not
    the one the change was planned on (nothing written), and
    :class:`~forescale.errors.GitError` for everything git refuses or fails at (no branch
    moved). ``ValueError`` for caller bugs: an empty message, a change that changes nothing,
    an extra file that is the variable file or is given twice.
    """
    if not isinstance(message, str) or not message.strip():
        raise ValueError("commit message must be non-empty: say what changed, when and why")
    if "\0" in message:
        raise ValueError("commit message must not contain NUL characters")
    if not change.changed:
        raise ValueError(
            f"{change.path}: nothing to commit, {change.address} already is "
            f"{change.new_value}; check change.changed before committing"
        )

    g = _Git.open(git, timeout=timeout)
    top, path_in_repo = _locate(g, change.path, repo)
    extra_paths = tuple(_inside(top, extra.path) for extra in extra_files)
    if path_in_repo in extra_paths:
        raise ValueError(f"{change.path}: an extra file cannot be the variable file itself")
    if len(set(extra_paths)) != len(extra_paths):
        raise ValueError("an extra file is given more than once")
    name = _check_branch(g, branch)
    _refuse_checked_out(g, name)
    parent, old_tip = _choose_parent(g, name, base)
    mode, blob = _tracked_entry(g, parent, path_in_repo)
    extra_modes = [_extra_mode(g, parent, path) for path in extra_paths]

    data = g.run("cat-file", "blob", blob).stdout
    if hashlib.sha256(data).hexdigest() != change.old_sha256:
        where = f"branch {name!r}" if old_tip is not None else f"base {base!r}"
        raise TfvarsConflict(
            f"{change.path}: the file on {where} ({path_in_repo} at {parent[:12]}) differs "
            "from what was planned; re-plan from that version (parent_file) and commit "
            "again"
        )

    new_blob = g.text("hash-object", "-w", "--stdin", "--no-filters", input=change.new_bytes)
    entries = [f"{mode},{new_blob},{path_in_repo}"]
    for extra, extra_mode, extra_path in zip(extra_files, extra_modes, extra_paths, strict=True):
        extra_blob = g.text("hash-object", "-w", "--stdin", "--no-filters", input=extra.data)
        entries.append(f"{extra_mode},{extra_blob},{extra_path}")
    with tempfile.TemporaryDirectory(prefix="forescale-git-") as scratch:
        index_env = {"GIT_INDEX_FILE": os.path.join(scratch, "index")}
        g.run(*_INDEX_CONFIG, "read-tree", parent, env=index_env)
        g.run(
            *_INDEX_CONFIG,
            "update-index",
            "--add",  # an extra file may be new; the variable file is tracked (checked above)
            *(arg for entry in entries for arg in ("--cacheinfo", entry)),
            env=index_env,
        )
        tree = g.text(*_INDEX_CONFIG, "write-tree", env=index_env)

    ident = {
        "GIT_AUTHOR_NAME": author_name,
        "GIT_AUTHOR_EMAIL": author_email,
        "GIT_COMMITTER_NAME": author_name,
        "GIT_COMMITTER_EMAIL": author_email,
    }
    text = message.strip() + "\n"
    commit = g.text(
        "commit-tree", tree, "-p", parent, "-F", "-", env=ident, input=text.encode("utf-8")
    )

    ref = f"refs/heads/{name}"
    expected = old_tip if old_tip is not None else "0" * len(commit)
    subject = text.splitlines()[0]
    moved = g.run("update-ref", "-m", f"forescale: {subject}", ref, commit, expected, check=False)
    if moved.returncode != 0:
        now = g.run("rev-parse", "--verify", "--quiet", ref, check=False).stdout.decode().strip()
        if now != (old_tip or ""):
            was = f"at {old_tip[:12]}" if old_tip is not None else "absent"
            is_now = f"at {now[:12]}" if now else "deleted"
            raise GitError(
                f"branch {name!r} changed while forescale was committing (it was {was}, is "
                f"now {is_now}); it was left alone: re-plan and commit again",
                cmd=moved.cmd,
                returncode=moved.returncode,
                stderr=_tail(moved.stderr),
            )
        # Not a race: e.g. a branch "forescale" blocks "forescale/capacity", or a
        # reference-transaction hook said no.
        raise _failed(moved, f"update branch {name!r}")
    _log.info(
        "committed %s (%s -> %s) on branch %s as %s",
        path_in_repo,
        change.address,
        change.new_value,
        name,
        commit[:12],
    )
    return CommitResult(
        branch=name,
        commit_sha=commit,
        parent_sha=parent,
        path_in_repo=path_in_repo,
        created_branch=old_tip is None,
        extra_paths=extra_paths,
    )


@dataclass(frozen=True, slots=True)
class ParentFile:
    """``path`` in the commit :func:`commit_change` would build on: its ``data``, and the
    branch's ``tip`` (None: the branch does not exist, ``data`` is ``base``'s);
    ``base_data``: ``path`` in ``base`` itself (what the checkout should hold)."""

    data: bytes
    tip: str | None
    base_data: bytes = b""


def parent_file(
    path: str | os.PathLike[str],
    *,
    branch: str,
    repo: Path | None = None,
    base: str = "HEAD",
    git: str = "git",
    timeout: float = 60,
) -> ParentFile:
    """The bytes of ``path`` in the commit :func:`commit_change` would build on.

    That is the tip of ``branch`` if it exists, else ``base``. Plan on these bytes
    (``tfvars.patch(data, address, value, filename=str(path))``) to commit on a branch that
    already carries forescale's earlier changes; ``tip`` says whether it does. Raises
    :class:`~forescale.errors.GitError` like :func:`commit_change`.
    """
    g = _Git.open(git, timeout=timeout)
    _top, path_in_repo = _locate(g, os.fspath(path), repo)
    name = _check_branch(g, branch)
    parent, old_tip = _choose_parent(g, name, base)
    _mode, blob = _tracked_entry(g, parent, path_in_repo)
    data = g.run("cat-file", "blob", blob).stdout
    if old_tip is None:
        return ParentFile(data=data, tip=None, base_data=data)
    base_sha = g.text("rev-parse", f"{base}^{{commit}}", what="read the base")
    found = _entry(g, base_sha, path_in_repo)
    base_data = b"" if found is None else g.run("cat-file", "blob", found[1]).stdout
    return ParentFile(data=data, tip=old_tip, base_data=base_data)


# --------------------------------------------------------------------------- steps


def _locate(g: _Git, file: str, repo: Path | None) -> tuple[Path, str]:
    """Find the repository's top level and the file's path in it; ``g`` then runs there."""
    directory = os.path.realpath(os.path.dirname(os.path.abspath(file)))
    start = os.fspath(repo) if repo is not None else directory
    if not os.path.isdir(start):
        raise GitError(
            f"{start}: no such directory (looking for the git repository)", cmd=(), returncode=None
        )
    g.cwd = start
    top = Path(os.path.realpath(g.text("rev-parse", "--show-toplevel", what="find the repository")))
    g.cwd = os.fspath(top)
    return top, _inside(top, file)


def _inside(top: Path, file: str) -> str:
    """``file``'s path relative to the repository's top level ``top``, ``/``-separated."""
    absolute = os.path.abspath(file)
    # Resolve the directory, not the file: a tracked symlink must be seen as one (and
    # refused) rather than silently followed to some other path.
    directory = os.path.realpath(os.path.dirname(absolute))
    relative = os.path.relpath(os.path.join(directory, os.path.basename(absolute)), top)
    if relative == os.curdir or relative.split(os.sep)[0] == os.pardir:
        raise GitError(f"{file} is not inside the git repository {top}", cmd=(), returncode=None)
    return PurePath(relative).as_posix()


def _check_branch(g: _Git, branch: str) -> str:
    """Validate ``branch`` as git would for ``git branch <name>``; return it unchanged."""
    if not isinstance(branch, str) or branch.startswith("refs/"):
        raise GitError(
            f"invalid branch name {branch!r}: give the short name (forescale/capacity), "
            "not a full ref",
            cmd=(),
            returncode=None,
        )
    done = g.run("check-ref-format", "--branch", branch, check=False)
    # --branch expands "@{-1}" to a real name; a name that needed expanding is not literal.
    if done.returncode != 0 or done.stdout.decode("utf-8", "replace").strip() != branch:
        raise GitError(
            f"invalid branch name {branch!r}: {_last_line(done.stderr) or 'not literal'}",
            cmd=done.cmd,
            returncode=done.returncode,
            stderr=_tail(done.stderr),
        )
    return branch


def _refuse_checked_out(g: _Git, branch: str) -> None:
    """Refuse a branch that is checked out in the main or any linked worktree."""
    done = g.run("worktree", "list", "--porcelain")
    ref = f"refs/heads/{branch}"
    worktree = ""
    for line in done.stdout.decode("utf-8", "surrogateescape").splitlines():
        if line.startswith("worktree "):
            worktree = line.removeprefix("worktree ")
        elif line == f"branch {ref}":
            raise GitError(
                f"branch {branch!r} is checked out in {worktree}; committing on it would "
                "leave that checkout out of step. Use a branch nobody has checked out",
                cmd=done.cmd,
                returncode=None,
            )


def _choose_parent(g: _Git, branch: str, base: str) -> tuple[str, str | None]:
    """Return (parent commit, current branch tip or ``None`` if the branch is new)."""
    if not base or base.startswith("-"):
        raise GitError(
            f"invalid base {base!r}: give a commit, branch or tag", cmd=(), returncode=None
        )
    found = g.run("rev-parse", "--verify", "--quiet", f"{base}^{{commit}}", check=False)
    if found.returncode != 0:
        raise GitError(
            f"base {base!r} is not a commit in {g.cwd}"
            f"{': ' + _last_line(found.stderr) if found.stderr.strip() else ''}",
            cmd=found.cmd,
            returncode=found.returncode,
            stderr=_tail(found.stderr),
        )
    base_sha = found.stdout.decode().strip()
    tip = g.run("rev-parse", "--verify", "--quiet", f"refs/heads/{branch}", check=False)
    if tip.returncode == 0:
        old = tip.stdout.decode().strip()
        return old, old
    if tip.returncode == 1 and not tip.stderr.strip():  # --quiet: "no such ref", nothing else
        return base_sha, None
    raise _failed(tip, "read the branch")


def _tracked_entry(g: _Git, commit: str, path: str) -> tuple[str, str]:
    """Return (mode, blob) of ``path`` in ``commit``; refuse anything but a regular file."""
    found = _entry(g, commit, path)
    if found is None:
        raise GitError(
            f"{path} is not tracked in commit {commit[:12]} of {g.cwd}; commit mode edits only "
            "files that are already in the repository",
            cmd=(g.binary, "ls-tree", "-z", "--full-tree", commit, "--", path),
            returncode=None,
        )
    return found


def _extra_mode(g: _Git, commit: str, path: str) -> str:
    """The mode an extra file is committed with: its mode in ``commit``, else ``100644``."""
    found = _entry(g, commit, path)
    return "100644" if found is None else found[0]


def _entry(g: _Git, commit: str, path: str) -> tuple[str, str] | None:
    """(mode, blob) of the regular file ``path`` in ``commit``; None when absent; refuse
    anything else at that path."""
    done = g.run("ls-tree", "-z", "--full-tree", commit, "--", path)
    for record in done.stdout.split(b"\0"):
        meta, tab, name = record.partition(b"\t")
        if not tab or name.decode("utf-8", "surrogateescape") != path:
            continue
        mode, kind, oid = meta.decode().split(" ")
        if kind == "blob" and mode in _REGULAR_MODES:
            return mode, oid
        what = {"120000": "a symlink", "040000": "a directory", "160000": "a submodule"}
        raise GitError(
            f"{path} is {what.get(mode, f'of mode {mode}')} in commit {commit[:12]}, not a "
            "regular file; point forescale at the file itself",
            cmd=done.cmd,
            returncode=None,
        )
    return None


# --------------------------------------------------------------------------- subprocess


@dataclass(frozen=True, slots=True)
class _Done:
    cmd: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: str


class _Git:
    """Runs git commands in ``cwd`` against one deadline for the whole operation."""

    def __init__(self, binary: str, *, deadline: float, timeout: float) -> None:
        self.binary = binary
        self.cwd = os.curdir
        self._deadline = deadline
        self._timeout = timeout
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        env.update(_FORCED_ENV)
        self._env = env

    @classmethod
    def open(cls, git: str, *, timeout: float) -> _Git:
        found = shutil.which(git)
        if found is None:
            where = "that path" if os.sep in git else "PATH"
            raise GitError(
                f"cannot find the {git!r} executable on {where}; install git or give its full path",
                cmd=(git,),
                returncode=None,
            )
        return cls(os.path.abspath(found), deadline=time.monotonic() + timeout, timeout=timeout)

    def text(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        input: bytes | None = None,
        what: str = "",
    ) -> str:
        """Run and return stdout as one stripped line of text (an object id, a path)."""
        return (
            self.run(*args, env=env, input=input, what=what)
            .stdout.decode("utf-8", "surrogateescape")
            .rstrip("\n")  # object ids and paths; a path may end in a space
        )

    def run(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        input: bytes | None = None,
        check: bool = True,
        what: str = "",
    ) -> _Done:
        """Run ``git <args>``; raise :class:`GitError` on a non-zero exit if ``check``."""
        cmd = (self.binary, *args)
        sub = next((a for a in args if not a.startswith("-") and "=" not in a), "")
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise GitError(
                f"git {sub} not started: the {self._timeout:g} s limit is used up",
                cmd=cmd,
                returncode=None,
            )
        full_env = {**self._env, **(env or {})}
        try:
            result = run_process(
                cmd,
                cwd=self.cwd,
                env=full_env,
                stdin=input,
                timeout=remaining,
                stop=_STOP,
                keep_stdout=STDOUT_MAX_BYTES,
                label=f"git {sub}",
            )
        except OSError as exc:
            raise GitError(
                f"could not start git {sub} in {self.cwd}: {exc}", cmd=cmd, returncode=None
            ) from exc
        if result.stopped_by is not None:
            raise GitError(
                f"git {sub} ran past the {self._timeout:g} s limit and was stopped",
                cmd=cmd,
                returncode=result.returncode,
                stderr=result.stderr.tail(),
            )
        if result.stdout.truncated:
            raise GitError(
                f"git {sub} printed more than {STDOUT_MAX_BYTES} bytes, more than forescale reads",
                cmd=cmd,
                returncode=result.returncode,
                stderr=result.stderr.tail(),
            )
        assert result.returncode is not None  # a child that exited by itself was reaped
        done = _Done(
            cmd=cmd,
            returncode=result.returncode,
            stdout=result.stdout.data,
            stderr=result.stderr.text(),
        )
        if check and done.returncode != 0:
            raise _failed(done, what or f"run git {sub}")
        return done


def _failed(done: _Done, what: str) -> GitError:
    hint = ""
    if "dubious ownership" in done.stderr:
        hint = (
            " (forescale ignores the global git config and its safe.directory: run it "
            "as the user that owns the checkout)"
        )
    return GitError(
        f"could not {what}: git exited {done.returncode}: {_last_line(done.stderr)}{hint}",
        cmd=done.cmd,
        returncode=done.returncode,
        stderr=_tail(done.stderr),
    )


def _last_line(text: str) -> str:
    """The line that says what went wrong: the last ``fatal:``/``error:``, else the last."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(("fatal:", "error:"))]
    return (errors or lines or [""])[-1]


def _tail(text: str, lines: int = TAIL_LINES) -> str:
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])
