#!/usr/bin/python3
"""Every malformed spec or config gives exit code 2 and exactly one line on stderr,
`contractor: error: FILE:LINE:COLUMN: message`, and nothing on stdout.

Usage: check_bad_specs.py CONTRACTOR BAD_SPECS_DIR

Each file starts with `# expect: LINE:COLUMN: text`: the position the error must name and a
piece of text its message must contain. Files under config/ are used as --config.
"""
import os
import pathlib
import re
import subprocess
import sys
import tempfile

GOOD_SPEC = "worker-image: worker.img\nsource: .\nworkspace: ws\nbuild: make\n"


def expectation(path):
    first = path.read_bytes().split(b"\n", 1)[0].decode()
    match = re.fullmatch(r"# expect: (\d+):(\d+): (.+)", first)
    if not match:
        sys.exit(f"{path}: first line must be '# expect: LINE:COLUMN: text'")
    return int(match.group(1)), int(match.group(2)), match.group(3)


def check(label, argv, prefix, text, environment=None):
    """Runs contractor; returns an error description or None."""
    run = subprocess.run(argv, capture_output=True, env=environment)
    stderr = run.stderr.decode(errors="replace")
    lines = stderr.splitlines()
    if run.returncode != 2:
        return f"{label}: exit {run.returncode}, expected 2; stderr: {stderr.strip()!r}"
    if run.stdout:
        return f"{label}: printed on stdout: {run.stdout[:200]!r}"
    if len(lines) != 1:
        return f"{label}: expected one line on stderr, got {len(lines)}: {stderr!r}"
    if not lines[0].startswith(prefix):
        return f"{label}: expected the line to start with {prefix!r}, got {lines[0]!r}"
    if text not in lines[0]:
        return f"{label}: expected {text!r} in {lines[0]!r}"
    return None


def main():
    contractor, directory = sys.argv[1], pathlib.Path(sys.argv[2])
    cases = []
    with tempfile.TemporaryDirectory() as scratch:
        scratch = pathlib.Path(scratch)
        # No user config from the machine running the test may change the outcome.
        environment = dict(os.environ, XDG_CONFIG_HOME=str(scratch / "config-home"))
        good = scratch / "good.yaml"
        good.write_text(GOOD_SPEC)

        for path in sorted(directory.glob("*.yaml")):
            line, column, text = expectation(path)
            cases.append((path.name, [contractor, "dump", str(path)],
                          f"contractor: error: {path}:{line}:{column}: ", text))
        for path in sorted((directory / "config").glob("*.yaml")):
            line, column, text = expectation(path)
            cases.append((f"config/{path.name}",
                          [contractor, "--config", str(path), "dump", "--effective", str(good)],
                          f"contractor: error: {path}:{line}:{column}: ", text))
        missing = scratch / "missing.yaml"
        cases.append(("missing file", [contractor, "dump", str(missing)],
                      f"contractor: error: {missing}: cannot read: ", "No such file or directory"))
        cases.append(("directory", [contractor, "dump", str(scratch)],
                      f"contractor: error: {scratch}: cannot read: ", "it is a directory"))
        cases.append(("no spec", [contractor, "dump"], "contractor: error: ", "SPEC is required"))
        cases.append(("unknown command", [contractor, "biuld", str(good)],
                      "contractor: error: ", "biuld"))
        cases.append(("missing config", [contractor, "--config", str(missing), "dump",
                                         str(good)], "contractor: error: ", "missing.yaml"))

        failures = [found for label, argv, prefix, text in cases
                    if (found := check(label, argv, prefix, text, environment))]
        for label, *_ in cases:
            status = "FAIL" if any(f.startswith(label + ":") for f in failures) else "ok  "
            print(f"{status} {label}")
        for failure in failures:
            print(f"  {failure}")
        print(f"{len(cases) - len(failures)} passed, {len(failures)} failed")
        sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
