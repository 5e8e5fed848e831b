"""Several `authserver` CLI commands in one process (one interpreter start instead of one per
command): the same entry point, `authserver.cli.main`, called once per command.

    python -m bench.cli_batch < commands.json      [{"args": [...], "stdin": "..."}, ...]

Prints a JSON list of {"code", "stdout", "stderr"}, one per command, in order; stops at the
first command that fails.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys


def main() -> None:
    from authserver.cli import main as authserver

    results = []
    for command in json.load(sys.stdin):
        out, err = io.StringIO(), io.StringIO()
        stdin, sys.stdin = sys.stdin, io.StringIO(command.get("stdin") or "")
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = authserver(command["args"])
        finally:
            sys.stdin = stdin
        results.append({"code": code, "stdout": out.getvalue(), "stderr": err.getvalue()})
        if code != 0:
            break
    json.dump(results, sys.__stdout__)


if __name__ == "__main__":
    main()
