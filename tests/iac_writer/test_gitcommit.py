"""commit mode: one plumbing-built commit on a branch; the user's checkout never touched.

Every test runs the real ``git`` binary on repositories made in ``tmp_path``, with ``HOME``
and the global config pointed away from the developer's, so their aliases, hooks, signing
or autocrlf settings cannot change the outcome.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from forescale.errors import ForescaleError, GitError, TfvarsConflict
from forescale.iac_writer import gitcommit
from forescale.iac_writer.gitcommit import (
    CommitResult,
    commit_change,
    parent_file,
)
from forescale.iac_writer.tfvars import TfvarsChange, patch, plan_change

BRANCH = "forescale/capacity"
MESSAGE = "forescale: web_min_size 4 -> 6\n\nBlack Friday forecast, 2024-11-29T06:00Z."
PROD = (
    b"# Production capacity. Owned by the platform team.\n"
    b'region       = "eu-west-1"\n'
    b"\n"
    b"web_min_size = 4 # peak floor\n"
    b"web_max_size = 12\n"
    b"# workers scale on queue depth\n"
    b"worker_count = 3\n"
)
BOM_CRLF = b"\xef\xbb\xbf# capacity\r\nweb_min_size = 4\r\nweb_max_size = 9\r\n"
JSON = b'{\n  "web_min_size": 4,\n  "web_max_size": 12\n}\n'

_IDENTITY = {
    "GIT_AUTHOR_NAME": "Dev",
    "GIT_AUTHOR_EMAIL": "dev@example.com",
    "GIT_COMMITTER_NAME": "Dev",
    "GIT_COMMITTER_EMAIL": "dev@example.com",
}


@pytest.fixture(autouse=True)
def isolated_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    for key in list(os.environ):
        if key.startswith("GIT_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")


def git(repo: Path, *args: str, input: bytes | None = None) -> str:
    done = subprocess.run(
        ["git", *args],
        cwd=repo,
        input=input,
        capture_output=True,
        check=True,
        env={**os.environ, **_IDENTITY},
    )
    return done.stdout.decode()


def make_repo(root: Path, files: dict[str, bytes], *, modes: dict[str, int] | None = None) -> Path:
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod((modes or {}).get(name, 0o644))
    git(root, "add", "--", *files)
    git(root, "commit", "-q", "-m", "initial")
    return root


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "iac", {"envs/prod.tfvars": PROD, "README.md": b"infra\n"})


def sha(repo: Path, rev: str) -> str:
    return git(repo, "rev-parse", "--verify", rev).strip()


def branch_tip(repo: Path, branch: str = BRANCH) -> str | None:
    done = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"],
        cwd=repo,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip() if done.returncode == 0 else None


def heads(repo: Path) -> list[str]:
    return git(repo, "for-each-ref", "--format=%(refname)", "refs/heads").split()


def changed_lines(repo: Path, old: str, new: str) -> tuple[list[str], list[str]]:
    diff = git(repo, "diff", "--unified=0", old, new).splitlines()
    minus = [line for line in diff if line.startswith("-") and not line.startswith("---")]
    plus = [line for line in diff if line.startswith("+") and not line.startswith("+++")]
    return minus, plus


def snapshot(repo: Path) -> tuple[bytes, bytes, str, str, str]:
    """Everything the user sees of their checkout: files, index, HEAD, status."""
    return (
        (repo / "envs/prod.tfvars").read_bytes(),
        (repo / ".git/index").read_bytes(),
        git(repo, "symbolic-ref", "HEAD"),
        sha(repo, "HEAD"),
        git(repo, "status", "--porcelain", "--untracked-files=all"),
    )


def commit(change: TfvarsChange, **kwargs: object) -> CommitResult:
    options: dict[str, object] = {"branch": BRANCH, "message": MESSAGE, **kwargs}
    return commit_change(change, **options)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the commit


def test_one_commit_changing_only_the_variable_line(repo: Path) -> None:
    path = repo / "envs/prod.tfvars"
    head = sha(repo, "HEAD")
    result = commit(plan_change(path, "web_min_size", 6))

    assert result == CommitResult(
        branch=BRANCH,
        commit_sha=sha(repo, BRANCH),
        parent_sha=head,
        path_in_repo="envs/prod.tfvars",
        created_branch=True,
    )
    assert git(repo, "rev-list", f"{head}..{BRANCH}").split() == [result.commit_sha]
    assert git(repo, "log", "-1", "--format=%P", BRANCH).split() == [head]
    assert git(repo, "diff", "--name-only", head, BRANCH).split() == ["envs/prod.tfvars"]
    assert changed_lines(repo, head, BRANCH) == (
        ["-web_min_size = 4 # peak floor"],
        ["+web_min_size = 6 # peak floor"],
    )
    committed = git(repo, "cat-file", "blob", f"{BRANCH}:envs/prod.tfvars").encode()
    assert committed == PROD.replace(b"= 4 #", b"= 6 #")
    assert git(repo, "log", "-1", "--format=%an <%ae>|%cn <%ce>", BRANCH).strip() == (
        "forescale <forescale@localhost>|forescale <forescale@localhost>"
    )
    assert git(repo, "log", "-1", "--format=%B", BRANCH).strip() == MESSAGE


def test_the_checkout_is_untouched(repo: Path) -> None:
    before = snapshot(repo)
    commit(plan_change(repo / "envs/prod.tfvars", "web_min_size", 6), author_name="Bot")
    assert snapshot(repo) == before
    assert before[4] == ""  # status --porcelain: clean before and after
    assert git(repo, "log", "-1", "--format=%an", BRANCH).strip() == "Bot"


def test_a_second_change_goes_on_top_of_the_branch(repo: Path) -> None:
    path = repo / "envs/prod.tfvars"
    first = commit(plan_change(path, "web_min_size", 6))

    # The working tree still has 4; plan on the branch's version instead.
    on_branch = parent_file(path, branch=BRANCH).data
    assert on_branch == PROD.replace(b"= 4 #", b"= 6 #")
    second = commit(patch(on_branch, "worker_count", 5, filename=str(path)), message="workers")

    assert second.parent_sha == first.commit_sha
    assert second.created_branch is False
    assert sha(repo, BRANCH) == second.commit_sha
    assert len(git(repo, "rev-list", f"main..{BRANCH}").split()) == 2
    assert changed_lines(repo, first.commit_sha, second.commit_sha) == (
        ["-worker_count = 3"],
        ["+worker_count = 5"],
    )


def test_the_parent_file_says_whether_the_branch_exists(repo: Path) -> None:
    """No branch: base's bytes and no tip; after a commit: the branch's bytes and its tip
    (commit mode tells an open proposal from a new one by it)."""
    path = repo / "envs/prod.tfvars"
    fresh = parent_file(path, branch=BRANCH)
    assert (fresh.data, fresh.tip) == (PROD, None)
    made = commit(plan_change(path, "web_min_size", 6))
    opened = parent_file(path, branch=BRANCH)
    assert opened.tip == made.commit_sha == sha(repo, BRANCH)
    assert opened.data == PROD.replace(b"= 4 #", b"= 6 #")


def test_an_existing_branch_is_extended_even_if_base_points_elsewhere(repo: Path) -> None:
    path = repo / "envs/prod.tfvars"
    first = commit(plan_change(path, "web_min_size", 6))
    (repo / "README.md").write_bytes(b"infra, v2\n")
    git(repo, "commit", "-q", "-am", "main moves on")

    data = parent_file(path, branch=BRANCH, base="main").data
    second = commit(patch(data, "web_max_size", 20, filename=str(path)), base="main")
    assert second.parent_sha == first.commit_sha


def test_a_new_branch_starts_at_base(repo: Path) -> None:
    initial = sha(repo, "HEAD")
    git(repo, "tag", "v1")
    (repo / "README.md").write_bytes(b"infra, v2\n")
    git(repo, "commit", "-q", "-am", "later")

    result = commit(plan_change(repo / "envs/prod.tfvars", "web_min_size", 6), base="v1")
    assert result.parent_sha == initial
    assert git(repo, "cat-file", "blob", f"{BRANCH}:README.md") == "infra\n"


def test_bom_and_crlf_bytes_are_committed_exactly(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "iac", {"prod.tfvars": BOM_CRLF})
    result = commit(plan_change(repo / "prod.tfvars", "web_min_size", 7))
    blob = subprocess.run(
        ["git", "cat-file", "blob", f"{result.commit_sha}:prod.tfvars"],
        cwd=repo,
        capture_output=True,
        check=True,
    ).stdout
    assert blob == BOM_CRLF.replace(b"= 4\r", b"= 7\r")
    assert blob.startswith(b"\xef\xbb\xbf") and blob.count(b"\r\n") == 3


def test_the_executable_bit_is_kept(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path / "iac", {"scaler.tfvars.json": JSON}, modes={"scaler.tfvars.json": 0o755}
    )
    assert git(repo, "ls-tree", "HEAD", "scaler.tfvars.json").startswith("100755 ")
    result = commit(plan_change(repo / "scaler.tfvars.json", "web_min_size", 6))
    entry = git(repo, "ls-tree", result.commit_sha, "scaler.tfvars.json")
    assert entry.startswith("100755 blob ")
    assert changed_lines(repo, result.parent_sha, result.commit_sha) == (
        ['-  "web_min_size": 4,'],
        ['+  "web_min_size": 6,'],
    )


# --------------------------------------------------------------------------- repo discovery


def test_repo_given_explicitly_and_a_relative_path(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(repo / "envs")
    change = plan_change("prod.tfvars", "web_min_size", 6)
    result = commit(change, repo=repo)
    assert result.path_in_repo == "envs/prod.tfvars"


def test_a_git_dir_in_the_environment_does_not_redirect(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = make_repo(tmp_path / "other", {"x.tfvars": b"a = 1\n"})
    index = (other / ".git/index").read_bytes()
    change = plan_change(repo / "envs/prod.tfvars", "web_min_size", 6)
    # As if forescale ran from a hook of another repository.
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    monkeypatch.setenv("GIT_INDEX_FILE", str(other / ".git/index"))
    commit(change)
    monkeypatch.delenv("GIT_DIR")
    monkeypatch.delenv("GIT_INDEX_FILE")
    assert branch_tip(repo) is not None
    assert heads(other) == ["refs/heads/main"]
    assert (other / ".git/index").read_bytes() == index


def test_a_file_outside_the_repository_is_refused(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "loose.tfvars"
    outside.write_bytes(PROD)
    with pytest.raises(GitError, match="not inside the git repository"):
        commit(plan_change(outside, "web_min_size", 6), repo=repo)
    assert heads(repo) == ["refs/heads/main"]


def test_no_repository_at_all(tmp_path: Path) -> None:
    loose = tmp_path / "loose.tfvars"
    loose.write_bytes(PROD)
    with pytest.raises(GitError, match="could not find the repository") as caught:
        commit(plan_change(loose, "web_min_size", 6))
    assert caught.value.returncode == 128
    assert "not a git repository" in caught.value.stderr


# --------------------------------------------------------------------------- refusals


def test_a_file_changed_on_the_branch_since_planning_is_refused(repo: Path) -> None:
    path = repo / "envs/prod.tfvars"
    first = commit(plan_change(path, "web_min_size", 6))
    stale = plan_change(path, "worker_count", 5)  # planned on the working tree: still 4
    before = snapshot(repo)

    with pytest.raises(TfvarsConflict, match=r"on branch 'forescale/capacity'.*re-plan"):
        commit(stale)
    assert sha(repo, BRANCH) == first.commit_sha
    assert snapshot(repo) == before


def test_base_differing_from_the_plan_is_refused_for_a_new_branch(repo: Path) -> None:
    path = repo / "envs/prod.tfvars"
    path.write_bytes(PROD.replace(b"worker_count = 3", b"worker_count = 8"))
    change = plan_change(path, "web_min_size", 6)  # planned on an uncommitted edit
    with pytest.raises(TfvarsConflict, match="on base 'HEAD'"):
        commit(change)
    assert heads(repo) == ["refs/heads/main"]


def test_an_untracked_file_is_refused(repo: Path) -> None:
    path = repo / "envs/staging.tfvars"
    path.write_bytes(PROD)
    with pytest.raises(GitError, match="envs/staging.tfvars is not tracked"):
        commit(plan_change(path, "web_min_size", 6))
    assert heads(repo) == ["refs/heads/main"]
    with pytest.raises(GitError, match="not tracked"):
        parent_file(path, branch=BRANCH)


def test_a_tracked_symlink_is_refused(repo: Path) -> None:
    link = repo / "current.tfvars"
    link.symlink_to("envs/prod.tfvars")
    git(repo, "add", "current.tfvars")
    git(repo, "commit", "-q", "-m", "link")
    with pytest.raises(GitError, match="current.tfvars is a symlink"):
        commit(plan_change(link, "web_min_size", 6))
    assert heads(repo) == ["refs/heads/main"]


@pytest.mark.parametrize(
    "name",
    ["bad..name", "-x", "has space", "ends.lock", "@{-1}", "", "HEAD", "refs/heads/x", "a/"],
)
def test_bad_branch_names_are_refused(repo: Path, name: str) -> None:
    git(repo, "checkout", "-q", "-b", "other")  # so that @{-1} would expand to "main"
    with pytest.raises(GitError, match="invalid branch name"):
        commit(plan_change(repo / "envs/prod.tfvars", "web_min_size", 6), branch=name)
    assert sorted(heads(repo)) == ["refs/heads/main", "refs/heads/other"]


def test_a_bad_branch_name_error_carries_the_command(repo: Path) -> None:
    with pytest.raises(GitError) as caught:
        commit(plan_change(repo / "envs/prod.tfvars", "web_min_size", 6), branch="a..b")
    assert caught.value.cmd[1:] == ("check-ref-format", "--branch", "a..b")
    assert caught.value.returncode == 128
    assert "not a valid branch name" in caught.value.stderr
    assert isinstance(caught.value, ForescaleError)


def test_the_current_branch_is_refused(repo: Path) -> None:
    before = snapshot(repo)
    with pytest.raises(GitError, match="'main' is checked out in"):
        commit(plan_change(repo / "envs/prod.tfvars", "web_min_size", 6), branch="main")
    assert snapshot(repo) == before


def test_a_branch_checked_out_in_another_worktree_is_refused(repo: Path, tmp_path: Path) -> None:
    git(repo, "worktree", "add", "-q", "-b", BRANCH, str(tmp_path / "wt"))
    tip = branch_tip(repo)
    with pytest.raises(GitError, match=f"checked out in {tmp_path / 'wt'}"):
        commit(plan_change(repo / "envs/prod.tfvars", "web_min_size", 6))
    assert branch_tip(repo) == tip


def test_an_unknown_base_is_refused(repo: Path) -> None:
    with pytest.raises(GitError, match="base 'nope' is not a commit"):
        commit(plan_change(repo / "envs/prod.tfvars", "web_min_size", 6), base="nope")
    with pytest.raises(GitError, match="invalid base"):
        commit(plan_change(repo / "envs/prod.tfvars", "web_min_size", 6), base="--all")
    assert heads(repo) == ["refs/heads/main"]


@pytest.mark.parametrize("message", ["", "  \n\n "])
def test_an_empty_message_is_refused(repo: Path, message: str) -> None:
    with pytest.raises(ValueError, match="message must be non-empty"):
        commit(plan_change(repo / "envs/prod.tfvars", "web_min_size", 6), message=message)
    assert heads(repo) == ["refs/heads/main"]


def test_a_change_that_changes_nothing_is_refused(repo: Path) -> None:
    with pytest.raises(ValueError, match="nothing to commit"):
        commit(plan_change(repo / "envs/prod.tfvars", "web_min_size", 4))
    assert heads(repo) == ["refs/heads/main"]


def test_a_missing_git_binary(repo: Path) -> None:
    with pytest.raises(GitError, match="cannot find the 'no-such-git' executable"):
        commit(plan_change(repo / "envs/prod.tfvars", "web_min_size", 6), git="no-such-git")


# --------------------------------------------------------------------------- races, limits


@pytest.fixture
def race(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Run ``git <argv>`` from the list just before forescale's update-ref (another writer)."""
    pending: list[str] = []
    real_run = gitcommit._Git.run

    def run(self: gitcommit._Git, *args: str, **kwargs: object) -> gitcommit._Done:
        if args and args[0] == "update-ref" and pending:
            subprocess.run(["git", *pending], cwd=self.cwd, check=True, env={**os.environ})
            pending.clear()
        return real_run(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(gitcommit._Git, "run", run)
    yield pending


def test_a_branch_moved_during_the_commit_is_not_overwritten(repo: Path, race: list[str]) -> None:
    path = repo / "envs/prod.tfvars"
    first = commit(plan_change(path, "web_min_size", 6))
    data = parent_file(path, branch=BRANCH).data
    main = sha(repo, "main")
    race[:] = ["update-ref", f"refs/heads/{BRANCH}", main]  # someone resets the branch

    with pytest.raises(GitError, match=r"changed while forescale was committing.*re-plan") as e:
        commit(patch(data, "worker_count", 5, filename=str(path)))
    assert branch_tip(repo) == main != first.commit_sha
    assert e.value.cmd[1] == "update-ref"
    assert e.value.returncode not in (0, None)


def test_a_branch_created_during_the_commit_is_not_overwritten(repo: Path, race: list[str]) -> None:
    main = sha(repo, "main")
    race[:] = ["branch", BRANCH, main]
    with pytest.raises(GitError, match=r"it was absent, is now at [0-9a-f]{12}"):
        commit(plan_change(repo / "envs/prod.tfvars", "web_min_size", 6))
    assert branch_tip(repo) == main


def test_a_ref_git_cannot_create_is_not_reported_as_a_race(repo: Path) -> None:
    git(repo, "branch", "forescale")  # refs/heads/forescale blocks refs/heads/forescale/...
    with pytest.raises(GitError, match=r"could not update branch 'forescale/capacity'.*exists"):
        commit(plan_change(repo / "envs/prod.tfvars", "web_min_size", 6))
    assert sorted(heads(repo)) == ["refs/heads/forescale", "refs/heads/main"]


def test_the_time_limit_stops_git_and_moves_no_ref(repo: Path) -> None:
    hook = repo / ".git/hooks/reference-transaction"
    hook.write_text("#!/bin/sh\nsleep 30\n")
    hook.chmod(0o755)
    started = time.monotonic()
    with pytest.raises(GitError, match="ran past the 2 s limit") as caught:
        commit(plan_change(repo / "envs/prod.tfvars", "web_min_size", 6), timeout=2)
    assert time.monotonic() - started < 10
    assert caught.value.cmd[1] == "update-ref"
    hook.unlink()
    assert branch_tip(repo) is None
    assert not list((repo / ".git/refs/heads").rglob("*.lock"))


def test_a_used_up_time_limit_starts_nothing(repo: Path) -> None:
    with pytest.raises(GitError, match="not started"):
        commit(plan_change(repo / "envs/prod.tfvars", "web_min_size", 6), timeout=0)


def test_eol_conversion_in_the_repo_plan_on_the_committed_bytes(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path / "iac", {"prod.tfvars": PROD, ".gitattributes": b"*.tfvars eol=crlf\n"}
    )
    path = repo / "prod.tfvars"
    path.unlink()
    git(repo, "checkout", "--", "prod.tfvars")
    assert path.read_bytes() == PROD.replace(b"\n", b"\r\n")  # checkout differs from blob

    with pytest.raises(TfvarsConflict, match="differs from what was planned"):
        commit(plan_change(path, "web_min_size", 6))
    data = parent_file(path, branch=BRANCH).data
    assert data == PROD
    result = commit(patch(data, "web_min_size", 6, filename=str(path)))
    blob = git(repo, "cat-file", "blob", f"{result.commit_sha}:prod.tfvars").encode()
    assert blob == PROD.replace(b"= 4 #", b"= 6 #")
    assert git(repo, "status", "--porcelain") == ""


# --------------------------------------------------------------------------- extra files


def _pr(repo: Path, text: bytes) -> gitcommit.ExtraFile:
    return gitcommit.ExtraFile(path=str(repo / "envs" / "FORESCALE_PR.md"), data=text)


def test_extra_files_go_into_the_same_single_commit(repo: Path) -> None:
    head = sha(repo, "HEAD")
    before = snapshot(repo)
    result = commit(
        plan_change(repo / "envs/prod.tfvars", "web_min_size", 6),
        extra_files=[_pr(repo, b"# proposal 1\n")],
    )

    assert result.extra_paths == ("envs/FORESCALE_PR.md",)
    assert git(repo, "rev-list", f"{head}..{BRANCH}").split() == [result.commit_sha]
    assert sorted(git(repo, "diff", "--name-only", head, BRANCH).split()) == [
        "envs/FORESCALE_PR.md",
        "envs/prod.tfvars",
    ]
    # the variable file: exactly its line, nothing else
    assert changed_lines(repo, head, f"{BRANCH}") == (
        ["-web_min_size = 4 # peak floor"],
        ["+# proposal 1", "+web_min_size = 6 # peak floor"],
    )
    assert git(repo, "ls-tree", BRANCH, "envs/FORESCALE_PR.md").split()[0] == "100644"
    assert git(repo, "cat-file", "blob", f"{BRANCH}:envs/FORESCALE_PR.md") == "# proposal 1\n"
    assert snapshot(repo) == before  # the checkout is untouched, no file written there
    assert not (repo / "envs/FORESCALE_PR.md").exists()


def test_a_second_proposal_replaces_the_extra_file_on_the_same_branch(repo: Path) -> None:
    path = repo / "envs/prod.tfvars"
    first = commit(plan_change(path, "web_min_size", 6), extra_files=[_pr(repo, b"one\n")])
    on_branch = parent_file(path, branch=BRANCH).data
    second = commit(
        patch(on_branch, "web_min_size", 9, filename=str(path)),
        extra_files=[_pr(repo, b"two\n")],
    )

    assert second.parent_sha == first.commit_sha and not second.created_branch
    assert heads(repo) == [f"refs/heads/{BRANCH}", "refs/heads/main"]
    assert git(repo, "diff", "--name-only", first.commit_sha, second.commit_sha).split() == [
        "envs/FORESCALE_PR.md",
        "envs/prod.tfvars",
    ]
    assert git(repo, "cat-file", "blob", f"{BRANCH}:envs/FORESCALE_PR.md") == "two\n"


def test_the_variable_file_keeps_its_compare_and_swap_with_extra_files(repo: Path) -> None:
    path = repo / "envs/prod.tfvars"
    commit(plan_change(path, "web_min_size", 6), extra_files=[_pr(repo, b"one\n")])
    tip = branch_tip(repo)
    # planned on the checkout (4), but the branch holds 6: refused, nothing written
    with pytest.raises(TfvarsConflict, match="differs from what was planned"):
        commit(plan_change(path, "web_min_size", 8), extra_files=[_pr(repo, b"two\n")])
    assert branch_tip(repo) == tip


def test_an_extra_file_that_is_not_a_regular_file_is_refused(repo: Path) -> None:
    (repo / "envs" / "FORESCALE_PR.md").symlink_to("prod.tfvars")
    git(repo, "add", "envs/FORESCALE_PR.md")
    git(repo, "commit", "-q", "-m", "link")
    with pytest.raises(GitError, match="FORESCALE_PR.md is a symlink"):
        commit(
            plan_change(repo / "envs/prod.tfvars", "web_min_size", 6),
            extra_files=[_pr(repo, b"x\n")],
        )
    assert heads(repo) == ["refs/heads/main"]


def test_an_extra_file_outside_the_repository_is_refused(repo: Path, tmp_path: Path) -> None:
    outside = gitcommit.ExtraFile(path=str(tmp_path / "elsewhere.md"), data=b"x\n")
    with pytest.raises(GitError, match="not inside the git repository"):
        commit(plan_change(repo / "envs/prod.tfvars", "web_min_size", 6), extra_files=[outside])
    assert heads(repo) == ["refs/heads/main"]


def test_an_extra_file_may_not_be_the_variable_file_or_given_twice(repo: Path) -> None:
    change = plan_change(repo / "envs/prod.tfvars", "web_min_size", 6)
    same = gitcommit.ExtraFile(path=str(repo / "envs/prod.tfvars"), data=b"x\n")
    with pytest.raises(ValueError, match="the variable file"):
        commit(change, extra_files=[same])
    with pytest.raises(ValueError, match="more than once"):
        commit(change, extra_files=[_pr(repo, b"a\n"), _pr(repo, b"b\n")])
    assert heads(repo) == ["refs/heads/main"]
