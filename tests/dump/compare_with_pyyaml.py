#!/usr/bin/python3
"""Checks that `contractor dump FILE` prints what Python's yaml.safe_load reads from FILE.

Usage: compare_with_pyyaml.py CONTRACTOR DIR_OR_FILE...

JSON cannot hold everything PyYAML builds, so both sides are compared after the documented
mapping (docs/yaml.md): dates and datetimes become their isoformat(), infinities and
NaN become the strings ".inf", "-.inf" and ".nan", non-string mapping keys become what
json.dumps writes for them. Types are compared strictly: True is not 1, 1 is not 1.0.
"""
import datetime
import json
import math
import pathlib
import subprocess
import sys

import yaml


def normalise(value):
    """PyYAML's value with the non-JSON parts mapped as contractor documents it."""
    if isinstance(value, dict):
        return {key_text(k): normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v) for v in value]
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        return value
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    return value


def key_text(key):
    if isinstance(key, str):
        return key
    if isinstance(key, float) and (math.isnan(key) or math.isinf(key)):
        return normalise(key)
    return json.dumps(key)


def difference(expected, actual, path="$"):
    """The first difference between the two values as text, or None when they are equal."""
    if type(expected) is not type(actual):
        return f"{path}: expected {type(expected).__name__} {expected!r}, got {type(actual).__name__} {actual!r}"
    if isinstance(expected, dict):
        if list(expected) != list(actual):
            return f"{path}: expected keys {list(expected)}, got {list(actual)}"
        for key in expected:
            found = difference(expected[key], actual[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(expected, list):
        if len(expected) != len(actual):
            return f"{path}: expected {len(expected)} items, got {len(actual)}"
        for index, (e, a) in enumerate(zip(expected, actual)):
            found = difference(e, a, f"{path}[{index}]")
            if found:
                return found
        return None
    if expected != actual:
        return f"{path}: expected {expected!r}, got {actual!r}"
    return None


def self_test():
    """The comparison must be able to fail: check that it tells apart values that differ only
    in type or order."""
    cases = [
        ({"a": True}, {"a": 1}),
        ({"a": 1}, {"a": 1.0}),
        ({"a": 1, "b": 2}, {"b": 2, "a": 1}),
        ({"a": [1, 2]}, {"a": [1, 2, 3]}),
        ({"a": None}, {"a": "null"}),
        ({"a": "x\n"}, {"a": "x"}),
    ]
    for expected, actual in cases:
        if difference(expected, actual) is None:
            sys.exit(f"self-test failed: {expected!r} and {actual!r} compare equal")


def files_in(arguments):
    for argument in arguments:
        path = pathlib.Path(argument)
        if path.is_dir():
            yield from sorted(path.glob("*.yaml"))
        else:
            yield path


def main():
    contractor, *inputs = sys.argv[1:]
    self_test()
    failures = 0
    count = 0
    for path in files_in(inputs):
        count += 1
        with open(path, "rb") as stream:
            expected = normalise(yaml.safe_load(stream))
        run = subprocess.run([contractor, "dump", str(path)], capture_output=True, text=True)
        if run.returncode != 0:
            print(f"FAIL {path}: exit {run.returncode}: {run.stderr.strip()}")
            failures += 1
            continue
        actual = json.loads(run.stdout)
        found = difference(expected, actual)
        if found:
            print(f"FAIL {path}: {found}")
            failures += 1
        else:
            print(f"ok   {path}")
    if count == 0:
        sys.exit("no YAML files found: nothing was compared")
    print(f"{count - failures} passed, {failures} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
