#!/usr/bin/env python3
"""Fails when a target imports a module it does not declare in Package.swift.

Reads the package as SwiftPM describes it (`swift package dump-package`), then every `import`
of every Swift file under each target's path. The toolchain's own modules need no declaration.
Usage: Tools/dev/check-imports.py   (from the package root; prints each undeclared import)
"""
import json
import os
import re
import subprocess
import sys

TOOLCHAIN = {"Foundation", "FoundationEssentials", "FoundationNetworking", "Dispatch", "Glibc", "Musl", "Darwin",
             "Synchronization", "Testing", "XCTest", "_Concurrency", "Observation", "RegexBuilder", "os"}
IMPORT = re.compile(r"^\s*(?:@\w+(?:\([^)]*\))?\s+)*import\s+(?:(?:struct|class|enum|protocol|func|var|let|typealias)\s+)?([A-Za-z_][A-Za-z0-9_]*)", re.M)

package = json.loads(subprocess.run(["swift", "package", "dump-package"], check=True, capture_output=True, text=True).stdout)
problems = []
for target in package["targets"]:
    declared = {target["name"]}
    for dependency in target.get("dependencies", []):
        for kind in ("byName", "product", "target"):
            if kind in dependency:
                declared.add(dependency[kind][0].replace("-", "_"))
    path = target.get("path") or os.path.join("Tests" if target["type"] == "test" else "Sources", target["name"])
    for root, _, files in os.walk(path):
        for name in files:
            if not name.endswith(".swift"):
                continue
            file = os.path.join(root, name)
            with open(file, encoding="utf-8") as handle:
                for module in IMPORT.findall(handle.read()):
                    # Lower-case names are Python modules in test scripts held in Swift strings.
                    if module not in declared and module not in TOOLCHAIN and not module[0].islower():
                        problems.append(f"{file}: imports {module}, which target {target['name']} does not declare")
for problem in sorted(set(problems)):
    print(problem)
if problems:
    print(f"{len(set(problems))} undeclared imports: add them to the target's dependencies in Package.swift")
    sys.exit(1)
print("imports: every target declares what it imports")
