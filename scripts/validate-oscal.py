#!/usr/bin/env python3
"""Validate an OSCAL JSON document against an OSCAL JSON schema.

    python3 validate.py SCHEMA DOC

Draft 7 validation, as the NIST schemas declare, plus:
- `pattern` is matched with the `regex` module: the OSCAL token and other
  patterns use \\p{L} / \\p{N}, which Python's `re` cannot compile; a
  final `$` matches only at the very end, as in ECMA-262;
- `format` is checked (FormatChecker): email always; uri and uri-reference
  need rfc3987 (or rfc3986-validator), date-time needs rfc3339-validator.
  A format whose library is missing is skipped (a note on stderr for the
  uri ones; the OSCAL date-time pattern is stricter than the format anyway).

Prints one line per error with its JSON path; exits 1 on any error, 0 when
the document is valid, 2 when the files cannot be read.

Debian 12: python3-jsonschema python3-regex python3-rfc3987 (no package there
for rfc3339-validator: date-time rests on the schema's pattern).
"""
import functools
import json
import sys

import regex
from jsonschema import Draft7Validator, FormatChecker, validators
from jsonschema.exceptions import ValidationError


@functools.lru_cache(maxsize=None)
def compile_pattern(patrn):
    # ECMA-262's `$` matches only at the very end; Python's also before a final
    # "\n", which would let "title\n" pass '^[^\n]+$'. Every OSCAL pattern ends
    # in one `$`: make it `\Z`.
    if patrn.endswith("$") and not patrn.endswith("\\$"):
        patrn = patrn[:-1] + "\\Z"
    return regex.compile(patrn)


def pattern(validator, patrn, instance, schema):
    """Draft 7 `pattern`: an unanchored search, here with `regex`."""
    if validator.is_type(instance, "string") and not compile_pattern(patrn).search(instance):
        yield ValidationError(f"{instance!r} does not match {patrn!r}")


OSCALValidator = validators.extend(Draft7Validator, {"pattern": pattern})


def main(argv):
    if len(argv) != 3:
        print(f"usage: {argv[0]} SCHEMA DOC", file=sys.stderr)
        return 2
    try:
        with open(argv[1], encoding="utf-8") as f:
            schema = json.load(f)
        with open(argv[2], encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    checker = FormatChecker()
    # jsonschema skips a format whose optional library is absent. date-time is
    # covered by the OSCAL pattern; uri-reference (href, source) has no pattern.
    missing = [f for f in ("uri", "uri-reference") if f not in checker.checkers]
    if missing:
        print(f"note: format not checked (library missing): {', '.join(missing)}", file=sys.stderr)
    validator = OSCALValidator(schema, format_checker=checker)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    for error in errors:
        print(f"{error.json_path}: {error.message}")
        if error.context:  # anyOf branches: also show the deepest reason
            inner = max(error.context, key=lambda e: len(e.absolute_path))
            print(f"    {inner.json_path}: {inner.message}")
    print(f"{argv[2]}: {len(errors)} error(s) against {schema.get('$id', argv[1])}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
