#!/usr/bin/env python3
"""Fails when a crate's files import each other in a circle.

For every crate under crates/ (and the binary under crates/cli), each .rs file is a node;
an edge a -> b means a's code names something of b through `crate::`, `super::` or `self::`
paths (in `use` lines or inline; comments and doc links are not code), following `pub use`
re-exports to the file that defines the item. Tests (`tests.rs`, `#[cfg(test)]` modules' own files) are left out:
they may reach anything.
The same check runs again with each of the crate's top-level modules (a file, or a folder
with all it holds) as one node. A parent module reaching its own child through `mod x;` is not an
edge. Prints each circle found and exits 1, else prints a line and exits 0.

  python3 scripts/check_module_cycles.py
"""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PATH = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
GROUP = re.compile(r"\b(crate|super|self)::\{([^;]*?)\};", re.S)


def module_files(src: Path, crate_root: Path):
    """Maps module paths (tuples) to files."""
    mods = {}
    for f in src.rglob("*.rs"):
        rel = f.relative_to(src).with_suffix("")
        parts = list(rel.parts)
        if f == crate_root:
            parts = []
        elif parts[-1] == "mod":
            parts = parts[:-1]
        mods[tuple(parts)] = f
    return mods


def module_of(path, mods, reexports):
    """The file that defines what `path` names: the longest prefix of it that is a module
    file, followed through that module's `pub use child::Item` re-exports."""
    for n in range(len(path), -1, -1):
        mod = tuple(path[:n])
        if mod in mods:
            while n < len(path) and (mod, path[n]) in reexports:
                mod = reexports[(mod, path[n])]
                n += 1
            return mod
    return None


def reexports_of(mods):
    """(module, item) -> the child module a `pub use child::...::item` re-export names."""
    out = {}
    for mod, f in mods.items():
        for m in re.finditer(r"pub(?:\([^)]*\))?\s+use\s+(?:self::)?([a-z_][a-z0-9_]*)::([^;]*);", f.read_text()):
            child = mod + (m.group(1),)
            if child not in mods:
                continue
            for name in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:[,}]|$)", m.group(2)):
                out[(mod, name)] = child
    return out


def strip_tests(text: str) -> str:
    """Drops `#[cfg(test)] mod x { ... }` blocks (their imports are the tests')."""
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*(?:#\[[^\]]*\]\s*)*mod\s+\w+\s*\{", text):
        if m.start() < i:
            continue
        out.append(text[i : m.start()])
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out)


def expand(text: str):
    """Every path a file names, with `use x::{a, b::c}` groups expanded one level."""
    paths = []
    for m in GROUP.finditer(text):
        base = m.group(1)
        for item in re.split(r",(?![^{]*\})", m.group(2)):
            item = item.strip()
            head = re.match(r"[A-Za-z_][A-Za-z0-9_]*(?:::[A-Za-z_][A-Za-z0-9_]*)*", item)
            if head:
                paths.append((base, head.group(0).split("::")))
    for m in PATH.finditer(text):
        paths.append((m.group(1), m.group(2).strip(":").split("::")))
    return paths


def edges_of(crate_dir: Path, src: Path, crate_root: Path):
    mods = module_files(src, crate_root)
    reexports = reexports_of(mods)
    edges = {}
    for mod, f in mods.items():
        if f.name == "tests.rs" or "tests" in mod:
            continue
        text = re.sub(r"//[^\n]*", "", strip_tests(f.read_text()))
        here = list(mod)
        targets = set()
        for base, rest in expand(text):
            if base == "crate":
                full = rest
            elif base == "super":
                up = here[:-1] if f.name != "mod.rs" and f != crate_root else here[:-1]
                while rest and rest[0] == "super":
                    up, rest = up[:-1], rest[1:]
                full = up + rest
            else:
                full = here + rest
            target = module_of(full, mods, reexports)
            if target is None or target == mod:
                continue
            # A module naming its own descendants is how Rust modules are built.
            if target[: len(mod)] == mod:
                continue
            if mods[target].name == "tests.rs" or "tests" in target:
                continue
            targets.add(target)
        edges[mod] = targets
    return edges, mods


def cycles(edges):
    """Strongly connected components of more than one node (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    sys.setrecursionlimit(10000)
    for v in list(edges):
        if v not in index:
            visit(v)
    return out


def main():
    crates = []
    for d in sorted((ROOT / "crates").iterdir()):
        if (d / "src" / "lib.rs").exists():
            crates.append((d, d / "src", d / "src" / "lib.rs"))
        elif (d / "main.rs").exists():
            crates.append((d, d, d / "main.rs"))
    found = 0
    for crate_dir, src, root in crates:
        edges, mods = edges_of(crate_dir, src, root)
        for comp in cycles(edges):
            found += 1
            names = sorted(str(mods[m].relative_to(ROOT)) for m in comp)
            print(f"{crate_dir.name}: files import each other in a circle: {', '.join(names)}")
        # The same at the level of the crate's top modules (a folder counts as one).
        top = {}
        for a, targets in edges.items():
            for b in targets:
                if a[:1] != b[:1] and a and b:
                    top.setdefault(a[:1], set()).add(b[:1])
        for comp in cycles(top):
            found += 1
            names = sorted("::".join(m) for m in comp)
            print(f"{crate_dir.name}: modules import each other in a circle: {', '.join(names)}")
    if found:
        sys.exit(1)
    print(f"no import circles in {len(crates)} crates")


if __name__ == "__main__":
    main()
