#!/usr/bin/env python3
"""Counts the lines of SQL text in the stores (Sources/VeoRelay/Storage): the lines of Swift multi-line
string literals, and one-line string literals that begin with an SQL keyword. Migrations are counted
apart (they are schema, written once per engine by nature).

    scripts/sql_lines.py [REVISION]    # the working tree, or a git revision
"""
import re
import subprocess
import sys

KEYWORDS = re.compile(r'"(SELECT|INSERT|UPDATE|DELETE|WITH|CREATE|ALTER|DROP|PRAGMA|EXPLAIN)\b')


def files(revision):
    if revision:
        names = subprocess.run(["git", "ls-tree", "-r", "--name-only", revision, "Sources/VeoRelay/Storage"],
                               capture_output=True, text=True, check=True).stdout.split()
        return {n: subprocess.run(["git", "show", f"{revision}:{n}"], capture_output=True, text=True, check=True).stdout
                for n in names if n.endswith(".swift")}
    names = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "Sources/VeoRelay/Storage"],
                           capture_output=True, text=True, check=True).stdout.split()
    result = {}
    for n in names:
        if n.endswith(".swift"):
            try:
                result[n] = open(n).read()
            except FileNotFoundError:
                pass
    return result


def sql_lines(text):
    count, inside = 0, False
    for line in text.splitlines():
        quotes = line.count('"""')
        if inside:
            count += 1
            if quotes % 2 == 1:
                inside = False
        elif quotes % 2 == 1:
            inside = True
        elif KEYWORDS.search(line):
            count += 1
    return count


def main():
    revision = sys.argv[1] if len(sys.argv) > 1 else None
    queries = migrations = 0
    for name, text in files(revision).items():
        if "Migrations" in name:
            migrations += sql_lines(text)
        else:
            queries += sql_lines(text)
    print(f"{revision or 'working tree'}: {queries} lines of query SQL, {migrations} lines of migration SQL")


main()
