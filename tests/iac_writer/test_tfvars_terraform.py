"""What the IaC writer reads and writes is what Terraform itself reads, on files whose
lexing python-hcl2's grammar gets wrong unless forescale corrects it: a heredoc whose
closing marker has spaces around it, and a ``$${`` / ``%%{`` escape with no ``}`` after it
in the same string. Each file is read by the real ``terraform console`` before and after
the edit."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from forescale.iac_writer.tfvars import apply_change, plan_change, read_value
from tests.iac_writer.conftest import isolated_env

VARIABLES = """
variable "web_min_size" {
  type = number
}
variable "text" {
  type    = any
  default = null
}
variable "notes" {
  type    = any
  default = null
}
"""

FILES = {
    # Terraform trims the marker line: "EOF " closes the heredoc; a later `web_min_size` in
    # another heredoc (a decoy 9 that hcl2 alone would read and write) is text
    "marker_space": (
        "text = <<EOF\n#!/bin/bash\necho hi\nEOF \nweb_min_size = 2\n"
        "notes = <<EOT\nEOF\nweb_min_size = 9 /*\nEOT\n# */\n"
    ),
    "marker_tab_trim": "text = <<-EOT\n  hello\n  EOT\t\nweb_min_size = 2\n",
    "marker_crlf": "text = <<EOF\r\nhello\r\nEOF  \r\nweb_min_size = 2\r\n",
    # "$${" is the two characters "${"; the next "}" two lines on is in a comment
    "escape_open": 'text = "$${"\nweb_min_size = 2\n/* old: "}"\nweb_min_size = 9\n# */\n',
    "directive_open": 'text = "%%{"\nweb_min_size = 2\nnotes = "}"\n',
    "escape_closed": 'text = "$${var.x} and %%{ if }"\nweb_min_size = 2\n',
}


def _terraform_reads(terraform: str, root: Path, var_file: Path) -> tuple[int, object]:
    env = {**__import__("os").environ, **isolated_env(root)}
    done = subprocess.run(
        [terraform, "console", f"-var-file={var_file}"],
        input="jsonencode([var.web_min_size, var.text])\n",
        capture_output=True,
        text=True,
        cwd=root,
        env=env,
        timeout=120,
        check=True,
    )
    number, text = json.loads(json.loads(done.stdout.strip().splitlines()[-1]))
    return number, text


@pytest.mark.parametrize("name", sorted(FILES))
def test_forescale_reads_and_writes_what_terraform_reads(
    name: str, tmp_path: Path, terraform_binary: str
) -> None:
    (tmp_path / "main.tf").write_text(VARIABLES)
    var_file = tmp_path / "prod.tfvars"
    var_file.write_bytes(FILES[name].encode())
    number, text = _terraform_reads(terraform_binary, tmp_path, var_file)
    assert number == 2  # what Terraform reads (checks the fixture, too)
    assert read_value(var_file, "web_min_size").value == 2
    apply_change(plan_change(var_file, "web_min_size", 5))
    assert _terraform_reads(terraform_binary, tmp_path, var_file) == (5, text)
    # and only the literal's character changed
    before, after = FILES[name].encode(), var_file.read_bytes()
    assert len(before) == len(after)
    assert [i for i in range(len(before)) if before[i] != after[i]] == [
        FILES[name].index("web_min_size = 2") + len("web_min_size = ")
    ]


REFUSED = {
    # Terraform ends the heredoc at "EOF" + a no-break space (Go trims all whitespace);
    # python-hcl2 reads on, to a decoy 9 inside the next heredoc
    "nbsp_marker": "a = <<EOF\nEOF\xa0\nb = <<EOX\nEOF\nweb_min_size = 9\nc = <<EOX\nEOX\n",
    "formfeed_marker": "a = <<EOF\nEOF\x0c\nb = <<EOX\nEOF\nweb_min_size = 9\nc = <<EOX\nEOX\n",
    # python-hcl2 ends it at a separator character before the marker; Terraform does not
    "separator_marker": "a = <<EOF\n\x1cEOF\nweb_min_size = 9\nb = <<EOF\nEOF\n",
    # the marker line sits inside a nested heredoc of an interpolation, or in a comment in
    # one: Terraform reads it as text, python-hcl2 as the end
    "nested_heredoc": (
        "a = <<EOF\n${<<X\nEOF\nweb_min_size = 9\nb = <<Y\nX\n}\nEOF\nweb_min_size = 2\n"
        "c = <<Y\nY\n"
    ),
    "comment_in_interpolation": (
        'a = <<EOF\n${"" /*\nEOF\nweb_min_size = 9\nb = "*/}\nEOF\nweb_min_size = 2\n# "\n'
    ),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_a_heredoc_terraform_may_end_elsewhere_is_refused(name: str, tmp_path: Path) -> None:
    """Each was read (get: 9) and written (set: inside another variable's heredoc) with
    exit 0, while Terraform read another value or none."""
    from forescale.errors import TfvarsParseError

    var_file = tmp_path / "prod.tfvars"
    var_file.write_bytes(REFUSED[name].encode())
    with pytest.raises(TfvarsParseError, match="heredoc <<EOF .*refusing to edit"):
        read_value(var_file, "web_min_size")
    assert var_file.read_bytes() == REFUSED[name].encode()
