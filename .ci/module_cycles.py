"""Fails when two top-level modules of the library import each other, directly or through
others (ARCHITECTURE.md: modules depend downward only). Reads `crate::MODULE` paths in code
(comments and doc comments skipped) and prints each module's dependencies."""

import pathlib
import re
import sys

SRC = pathlib.Path(__file__).resolve().parent.parent / "src"
graph: dict[str, set[str]] = {}
for path in SRC.rglob("*.rs"):
    rel = path.relative_to(SRC)
    module = rel.parts[0].removesuffix(".rs")
    if module == "lib":
        continue
    deps = graph.setdefault(module, set())
    for line in path.read_text().splitlines():
        code = line.split("//", 1)[0]
        for dep in re.findall(r"\bcrate::([a-z_]+)", code):
            if dep != module:
                deps.add(dep)

for module in sorted(graph):
    print(f"{module:12} -> {', '.join(sorted(graph[module])) or '-'}")

state: dict[str, int] = {}
stack: list[str] = []


def visit(node: str) -> None:
    state[node] = 1
    stack.append(node)
    for dep in sorted(graph.get(node, ())):
        if state.get(dep) == 1:
            cycle = stack[stack.index(dep):] + [dep]
            sys.exit("import cycle: " + " -> ".join(cycle))
        if dep not in state:
            visit(dep)
    stack.pop()
    state[node] = 2


for module in sorted(graph):
    if module not in state:
        visit(module)
print("no import cycle between modules")
