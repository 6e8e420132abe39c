#!/usr/bin/env python3
"""Compile TFLM's own structs for three ABIs and write their sizes as JSON.

For every builtin opcode in ``TFLM_BUILTIN_OPS`` (tfnas/memory/kernels/__init__.py)
and for each target, the output ``tflm_sizes.json`` holds:

``init``
    The bytes each ``AllocatePersistentBuffer`` call of the kernel's Init asks for,
    in source order (``[]`` when the registration has no Init or the Init
    allocates nothing).
``params``
    ``[sizeof, alignof]`` of the builtin-params struct that the op's flatbuffer
    parser allocates (``Allocate<T>()`` through ``MicroBuiltinDataAllocator``,
    which passes ``sizeof(T)`` and ``alignof(T)`` to the persistent tail), or
    null when the parser allocates nothing.
``prepare_structs``
    Each ``AllocatePersistentBuffer(sizeof(X))`` outside an Init (in Prepare or
    a helper it calls), keyed by the name of ``X``'s type (``Type@file.cc``
    when files share a name): ``size``, ``align``, the compiler's ``type``,
    ``where``, ``function``, ``expr``, the ``opcodes`` whose Prepare reaches it
    and ``conditional`` when the call is inside an ``if``/loop. Calls whose
    size is computed (``n * sizeof(int32_t)``) are listed under
    ``notes.computed_persistent_allocations`` instead, with each ``sizeof``
    probed.
``runtime``
    ``[sizeof, alignof]`` of the framework structs the allocator puts in the arena.

Targets: ``host`` (g++, ``TARGET=linux``), ``cortex-m`` (arm-none-eabi-g++,
``TARGET=cortex_a_generic TARGET_ARCH=armv7-a``: bare-metal EABI, the
toolchain's short enums) and ``cortex-m-cmsis`` (the same plus
``OPTIMIZED_KERNEL_DIR=cmsis_nn``).

Method
------
1. The TFLM tree (only read) is copied to a temporary folder. There TFLM's own
   Makefile is asked, per configuration, for the compiler, flags and include
   folders (a ``print_flags`` rule, as /work/shared/tflm-src/build.sh does) and
   for the library's source list (``list_library_sources``; with
   ``OPTIMIZED_KERNEL_DIR=cmsis_nn`` it names ``kernels/cmsis_nn/X.cc`` in place
   of ``kernels/X.cc``). The flags keep every ``-D``, ``-m``, ``-f`` and
   ``-std=`` option, so ``TF_LITE_STATIC_MEMORY`` is defined as in the library.
2. ``micro_mutable_op_resolver.h`` gives each opcode's default registration
   (``Register_X()``) and parser (``ParseX``).
3. The sources that matter are preprocessed with those flags (so ``#if``
   branches are the library's). In the preprocessed text the script finds the
   ``Register_X`` definition (following ``return Register_Y();``), the Init
   named in its ``RegisterOp(init, prepare, eval)``, that Init's definition and
   its ``AllocatePersistentBuffer`` calls; the parser's ``Allocate<T>()``; and
   every other ``AllocatePersistentBuffer`` call in the kernel sources. Calls
   are followed from each opcode's Prepare through functions defined in the
   kernel sources, to tell which opcodes reach which allocation.
4. For each ``sizeof(X)`` found, a probe
   ``static const char tfnas_probe_N[sizeof(X)]`` (plus one for
   ``__alignof__(X)`` and one naming ``__typeof__(X)``) is inserted in a copy of the source just before the
   allocating statement, so ``X`` is looked up exactly as the kernel sees it;
   the copy is compiled with ``-c`` and the sizes are read from the object's
   symbol table (``nm -S -C``). Nothing is linked or run, so the ARM numbers come
   from arm-none-eabi-g++ itself. (``-O0 -w`` is added: neither changes a
   layout.)
5. A few sizes measured in real TFLM builds are checked. Anything the script
   cannot interpret (a registration, Init or parser it cannot find, a probe
   that does not compile or leaves no symbol, a known size that differs) stops
   it with an error before anything is written.

Usage::

    python tools/tflm_kernel_sizes.py [--tree TFLM_TREE] [--out tfnas/memory/tflm_sizes.json]
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_TREE = Path("/work/shared/tflm-src/tflite-micro")
DEFAULT_OUT = REPO / "tfnas" / "memory" / "tflm_sizes.json"
TFLM_COMMIT = "90b983c2b3f1480642e040bbd2ddb37b998f3424"

MAKEFILE = "tensorflow/lite/micro/tools/make/Makefile"
RESOLVER_H = "tensorflow/lite/micro/micro_mutable_op_resolver.h"
PARSERS_CC = "tensorflow/lite/core/api/flatbuffer_conversions.cc"
ALLOCATOR_CC = "tensorflow/lite/micro/micro_allocator.cc"
KERNELS_DIR = "tensorflow/lite/micro/kernels/"

#: make arguments per target (see /work/shared/tflm-src/build.sh).
CONFIGS: dict[str, tuple[str, ...]] = {
    "host": ("TARGET=linux",),
    "cortex-m": ("TARGET=cortex_a_generic", "TARGET_ARCH=armv7-a"),
    "cortex-m-cmsis": (
        "TARGET=cortex_a_generic",
        "TARGET_ARCH=armv7-a",
        "OPTIMIZED_KERNEL_DIR=cmsis_nn",
    ),
}
#: Empty the example/benchmark variables whose Makefile.inc files would generate
#: sources with numpy at parse time (the library source list is unchanged).
NOGEN = (
    "BUILD_TYPE=default",
    "MICRO_LITE_EXAMPLE_TESTS=",
    "MICRO_LITE_INTEGRATION_TESTS=",
    "MICRO_LITE_GEN_MUTABLE_OP_RESOLVER_TEST=",
    "OLD_MICRO_LITE_BENCHMARKS=",
    "MICRO_LITE_BENCHMARKS=",
    "MICRO_LITE_LAYER_BY_LAYER_OUTPUT=",
    "EXPLICITLY_SPECIFIED_TEST=__none__",
)
PRINT_FLAGS_MK = (
    "tfnas_print_flags:\n"
    "\t$(info TFNAS_CXX=$(CXX))\n"
    "\t$(info TFNAS_CXXFLAGS=$(CXXFLAGS))\n"
    "\t$(info TFNAS_INCLUDES=$(INCLUDES))\n"
    "\t@:\n"
)

#: Runtime structs, as spelled inside ``namespace tflite`` at the end of micro_allocator.cc.
RUNTIME_STRUCTS: dict[str, str] = {
    "TfLiteTensor": "TfLiteTensor",
    "TfLiteEvalTensor": "TfLiteEvalTensor",
    "TfLiteAffineQuantization": "TfLiteAffineQuantization",
    "TfLiteIntArray": "TfLiteIntArray",
    "TfLiteFloatArray": "TfLiteFloatArray",
    "TfLiteNode": "TfLiteNode",
    "TFLMRegistration": "TFLMRegistration",
    "NodeAndRegistration": "NodeAndRegistration",
    "ScratchBufferRequest": "internal::ScratchBufferRequest",
    "ScratchBufferHandle": "ScratchBufferHandle",
    "SubgraphAllocations": "SubgraphAllocations",
    "AllocationInfo": "AllocationInfo",
    "SingleArenaBufferAllocator": "SingleArenaBufferAllocator",
    "GreedyMemoryPlanner": "GreedyMemoryPlanner",
    "GreedyMemoryPlanner::ListEntry": "GreedyMemoryPlanner::ListEntry",
    "MicroAllocator": "MicroAllocator",
    "MicroBuiltinDataAllocator": "MicroBuiltinDataAllocator",
    "size_t": "size_t",
    "pointer": "void*",
}

#: Init sizes measured in real TFLM builds (the brief's reference values).
KNOWN_INIT: dict[str, dict[str, int]] = {
    "host": {
        "CONV_2D": 72,
        "DEPTHWISE_CONV_2D": 72,
        "FULLY_CONNECTED": 64,
        "ADD": 60,
        "SOFTMAX": 80,
        "MEAN": 44,
        "CONCATENATION": 40,
        "UNIDIRECTIONAL_SEQUENCE_LSTM": 688,
        "PAD": 56,
        "MIRROR_PAD": 20,
        "SVDF": 36,
        "QUANTIZE": 32,
        "AVERAGE_POOL_2D": 32,
    },
    "cortex-m": {"CONV_2D": 56, "FULLY_CONNECTED": 48, "SOFTMAX": 56, "CONCATENATION": 24},
    "cortex-m-cmsis": {
        "CONV_2D": 60,
        "FULLY_CONNECTED": 72,
        "AVERAGE_POOL_2D": 36,
        "MAX_POOL_2D": 36,
        "SOFTMAX": 64,
        "SVDF": 40,
        "UNIDIRECTIONAL_SEQUENCE_LSTM": 912,
    },
}

_MARKER = re.compile(r'^# (\d+) "((?:[^"\\]|\\.)*)"')
_LITERAL = re.compile(r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'')
_KEYWORDS = frozenset({"if", "for", "while", "switch", "catch", "return", "sizeof", "alignof"})
_BLOCK_WORDS = frozenset({"else", "do", "try", "const", "override", "noexcept", "final"})
_PAIRS = {"(": ")", "[": "]", "{": "}", "<": ">"}
_INIT_SIGNATURE = (
    r"void\s*\*\s*{}\s*\(\s*TfLiteContext\s*\*\s*\w*\s*,\s*const\s+char\s*\*\s*\w*\s*,"
    r"\s*size_t\s*\w*\s*\)\s*\{{$"
)


class SizesError(RuntimeError):
    """The sources no longer match what this script expects."""


# --------------------------------------------------------------------------- text helpers


def _mask_literals(text: str) -> str:
    """Blank the inside of string and character literals (same length)."""
    return _LITERAL.sub(lambda m: m[0][0] + " " * (len(m[0]) - 2) + m[0][-1], text)


def _strip_comments(text: str) -> str:
    """Blank C/C++ comments, keeping newlines and offsets."""

    def blank(m: re.Match[str]) -> str:
        return re.sub(r"[^\n]", " ", m[0])

    return re.sub(r"//[^\n]*|/\*.*?\*/", blank, text, flags=re.S)


def _match(text: str, open_pos: int) -> int:
    """Index of the bracket closing the one at ``open_pos``."""
    opener = text[open_pos]
    closer = _PAIRS[opener]
    depth = 0
    for i in range(open_pos, len(text)):
        c = text[i]
        if c == opener:
            depth += 1
        elif c == closer:
            depth -= 1
            if depth == 0:
                return i
    raise SizesError(f"unbalanced {opener!r} at offset {open_pos}")


def _split_args(text: str, open_pos: int, angles: bool = False) -> list[str]:
    """The top-level, comma-separated arguments of the call whose '(' is at ``open_pos``."""
    close = _match(text, open_pos)
    openers = "([{<" if angles else "([{"
    closers = ")]}>" if angles else ")]}"
    args, depth, start = [], 0, open_pos + 1
    for i in range(open_pos + 1, close):
        c = text[i]
        if c in openers:
            depth += 1
        elif c in closers:
            depth -= 1
        elif c == "," and depth == 0:
            args.append(text[start:i])
            start = i + 1
    args.append(text[start:close])
    args = [" ".join(a.split()) for a in args]
    return [] if args == [""] else args


def _prev_word(text: str, pos: int) -> tuple[str, int]:
    """The non-space character or identifier ending just before ``pos``, and its start."""
    i = pos - 1
    while i >= 0 and text[i].isspace():
        i -= 1
    if i < 0:
        return "", 0
    if text[i].isalnum() or text[i] == "_":
        j = i
        while j > 0 and (text[j - 1].isalnum() or text[j - 1] == "_"):
            j -= 1
        return text[j : i + 1], j
    return text[i], i


def _is_block_open(text: str, brace: int) -> bool:
    """Whether the '{' at ``brace`` opens a block (not a braced initializer)."""
    word, _ = _prev_word(text, brace)
    return word in (")", ";", "{", "}", ":", "") or word in _BLOCK_WORDS


def _statement_start(text: str, pos: int, lo: int) -> int:
    """Offset where the statement containing ``pos`` starts (scanning back to ``lo``)."""
    parens = braces = 0
    i = pos - 1
    while i > lo:
        c = text[i]
        if c == ")":
            parens += 1
        elif c == "(":
            parens -= 1
        elif c == "}":
            if parens <= 0 and braces == 0:
                break
            braces += 1
        elif c == "{":
            if braces > 0:
                braces -= 1
            elif _is_block_open(text, i):
                break
        elif c == ";" and parens <= 0 and braces == 0:
            break
        i -= 1
    i += 1
    while text[i].isspace():
        i += 1
    return i


def _function_at(text: str, brace: int) -> str | None:
    """The name of the function whose body opens at ``brace``, else None."""
    word, at = _prev_word(text, brace)
    while word in ("const", "override", "noexcept", "final"):
        word, at = _prev_word(text, at)
    if word != ")":
        return None
    depth, i = 0, at
    while i >= 0:
        if text[i] == ")":
            depth += 1
        elif text[i] == "(":
            depth -= 1
            if depth == 0:
                break
        i -= 1
    name, _ = _prev_word(text, i)
    if not re.fullmatch(r"[A-Za-z_]\w*", name) or name in _KEYWORDS:
        return None
    return name


def _enclosing_function(text: str, pos: int) -> tuple[str, int] | None:
    """(name, body '{' offset) of the function containing ``pos``, else None."""
    depth = 0
    for i in range(pos - 1, -1, -1):
        c = text[i]
        if c == "}":
            depth += 1
        elif c == "{":
            if depth:
                depth -= 1
                continue
            name = _function_at(text, i)
            if name is not None:
                return name, i
    return None


def _sizeof_operands(expr: str) -> list[str]:
    """The operands of every ``sizeof(...)`` in ``expr``."""
    out = []
    for m in re.finditer(r"\bsizeof\s*\(", expr):
        open_pos = m.end() - 1
        out.append(" ".join(expr[open_pos + 1 : _match(expr, open_pos)].split()))
    return out


# --------------------------------------------------------------------------- toolchains


@dataclass
class Toolchain:
    """One TFLM configuration: its compiler, flags and library sources."""

    name: str
    cxx: str
    nm: str
    flags: list[str]
    includes: list[str]
    sources: list[str]

    def command(self, *args: str) -> list[str]:
        """A compiler command line with this configuration's flags."""
        return [self.cxx, *self.flags, "-O0", "-w", *self.includes, *args]


def _run(cmd: list[str], cwd: Path) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-25:])
        raise SizesError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{tail}")
    return proc.stdout


def _toolchain(name: str, tree: Path) -> Toolchain:
    make = ["make", "--no-print-directory", "-f", MAKEFILE, *CONFIGS[name], *NOGEN]
    out = _run([*make, "-f", "tfnas_print_flags.mk", "tfnas_print_flags"], tree)
    vals = dict(line.split("=", 1)[0:2] for line in out.splitlines() if line.startswith("TFNAS_"))
    cxx = vals["TFNAS_CXX"].strip()
    flags = [
        f
        for f in vals["TFNAS_CXXFLAGS"].split()
        if f.startswith(("-D", "-m", "-f", "-std=")) and f != "-MD"
    ]
    if "-DTF_LITE_STATIC_MEMORY" not in flags:
        raise SizesError(f"{name}: TF_LITE_STATIC_MEMORY is not among the Makefile's flags")
    includes: list[str] = []
    for f in vals["TFNAS_INCLUDES"].split():
        if f.startswith("-I") and f not in includes:
            includes.append(f.replace('"', ""))
    out = _run([*make, "list_library_sources"], tree)
    sources = [s for s in out.split() if s.endswith((".cc", ".c"))]
    nm = re.sub(r"g\+\+$", "nm", cxx)
    for tool in (cxx, nm):
        if shutil.which(tool) is None:
            raise SizesError(f"{name}: {tool} not found")
    return Toolchain(name, cxx, nm, flags, includes, sources)


# --------------------------------------------------------------------------- preprocessed units


@dataclass
class Unit:
    """A preprocessed source: lines from other files blanked, literals masked."""

    path: str
    text: str
    orig: list[int]  # for each line of ``text``: its line in ``path`` (0: another file)
    starts: list[int]  # offset of each line of ``text``

    def line_index(self, pos: int) -> int:
        """Index of the line of ``text`` holding offset ``pos``."""
        lo, hi = 0, len(self.starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.starts[mid] <= pos:
                lo = mid
            else:
                hi = mid - 1
        return lo

    def where(self, pos: int) -> str:
        """``path:line`` of offset ``pos``."""
        return f"{self.path}:{self.orig[self.line_index(pos)]}"

    def definitions(self, name: str) -> list[tuple[int, int]]:
        """(name offset, body '{' offset) of each definition of function ``name``."""
        found = []
        for m in re.finditer(rf"(?<![\w]){re.escape(name)}\s*\(", self.text):
            close = _match(self.text, m.end() - 1)
            rest = re.match(
                r"\s*(?:(?:const|override|noexcept|final)\s*)*\{", self.text[close + 1 :]
            )
            if rest is None:
                continue
            word, _ = _prev_word(self.text, m.start())
            if word in ("return", "=", "(", ",", ".", ">"):
                continue
            found.append((m.start(), close + rest.end()))
        return found


def _preprocess(tc: Toolchain, tree: Path, path: str) -> Unit:
    out = _run(tc.command("-E", path), tree)
    lines: list[str] = []
    orig: list[int] = []
    current, line_no = "", 0
    for line in out.split("\n"):
        m = _MARKER.match(line)
        if m:
            line_no, current = int(m[1]), m[2]
            lines.append("")
            orig.append(0)
            continue
        mine = current == path
        lines.append(line if mine else "")
        orig.append(line_no if mine else 0)
        line_no += 1
    text = _mask_literals("\n".join(lines))
    starts, pos = [], 0
    for line in lines:
        starts.append(pos)
        pos += len(line) + 1
    return Unit(path, text, orig, starts)


# --------------------------------------------------------------------------- probes


@dataclass
class Probe:
    """One ``sizeof``/``__alignof__`` pair placed before a statement of a source."""

    ident: int
    path: str
    line: int  # 1-based line of ``path``
    col: int
    operand: str
    sizes: list[int] = field(default_factory=list)
    aligns: list[int] = field(default_factory=list)
    types: list[str] = field(default_factory=list)  # the operand's type(s), as nm -C names them


#: Prepended to a probed copy: ``&TfnasTypeProbe<N, __typeof__(X)>::value`` makes the
#: object file carry a symbol whose demangled name spells the type of ``X``.
_TYPE_PROBE = (
    "template <int N, typename T> struct TfnasTypeProbe { static const char value; }; "
    "template <int N, typename T> const char TfnasTypeProbe<N, T>::value = 0; "
)
_TYPE_SYMBOL = re.compile(r"TfnasTypeProbe<(\d+), (.*)>::value$")
_RAW_DEFINITION = re.compile(r"(?<![\w])([A-Za-z_]\w*)\s*\([^;{}]*\)\s*(?:const\s*)?\{")
_CALLEE = re.compile(r"(?<![\w.])(?<!->)(?:\w+::)*([A-Za-z_]\w*)\s*(?:<[^;{}()<>]*>)?\s*\(")
_PROBE_SYMBOL = re.compile(r"tfnas_(probe|align)_(\d+)(?!\d)")


class Prober:
    """Collects probes per source, compiles the probed copies, reads ``nm -S``."""

    def __init__(self, tc: Toolchain, tree: Path, workdir: Path, jobs: int) -> None:
        self.tc, self.tree, self.workdir, self.jobs = tc, tree, workdir, jobs
        self.probes: list[Probe] = []
        self._lines: dict[str, list[str]] = {}

    def before_statement(self, unit: Unit, pos: int, lo: int, operand: str) -> Probe:
        """Probe ``sizeof(operand)`` just before the statement containing ``pos``."""
        start = _statement_start(unit.text, pos, lo)
        index = unit.line_index(start)
        line = unit.orig[index]
        if line == 0:
            raise SizesError(f"{unit.path}: a statement at offset {start} is not in the source")
        prefix = unit.text[unit.starts[index] : start]
        if unit.path not in self._lines:
            self._lines[unit.path] = (self.tree / unit.path).read_text().split("\n")
        source = self._lines[unit.path][line - 1]
        if source.startswith(prefix):
            col = len(prefix)
        elif not prefix.strip():
            col = 0
        else:
            raise SizesError(f"{unit.where(start)}: cannot place a probe before {prefix!r}")
        probe = Probe(len(self.probes), unit.path, line, col, operand)
        self.probes.append(probe)
        return probe

    def appended(self, path: str, operand: str) -> Probe:
        """Probe ``sizeof(operand)`` in a function appended to ``path`` (namespace tflite)."""
        probe = Probe(len(self.probes), path, 0, 0, operand)
        self.probes.append(probe)
        return probe

    @staticmethod
    def _decl(probe: Probe) -> str:
        op, n = probe.operand, probe.ident
        return (
            f"[[gnu::used]] static const char tfnas_probe_{n}[sizeof({op})] = {{0}}; "
            f"[[gnu::used]] static const char tfnas_align_{n}[__alignof__({op})] = {{0}}; "
            f"[[gnu::used]] static const char* const tfnas_type_{n} = "
            f"&TfnasTypeProbe<{n}, __typeof__({op})>::value; "
        )

    def _compile(self, path: str, probes: list[Probe]) -> None:
        lines = (self.tree / path).read_text().split("\n")
        appended = [p for p in probes if p.line == 0]
        for p in sorted((p for p in probes if p.line), key=lambda p: (-p.line, -p.col)):
            text = lines[p.line - 1]
            lines[p.line - 1] = text[: p.col] + self._decl(p) + text[p.col :]
        if appended:
            body = "\n".join("  " + self._decl(p) for p in appended)
            lines.append(f"namespace tflite {{\nvoid tfnas_appended_probes() {{\n{body}\n}}\n}}")
        lines[0] = _TYPE_PROBE + lines[0]
        src = self.tree / path
        copy = src.with_name(f"{src.stem}.tfnas_{self.tc.name}{src.suffix}")
        copy.write_text("\n".join(lines))
        obj = self.workdir / f"{self.tc.name}_{path.replace('/', '_')}.o"
        try:
            _run(self.tc.command("-c", str(copy.relative_to(self.tree)), "-o", str(obj)), self.tree)
        except SizesError as err:
            raise SizesError(f"{self.tc.name}: probing {path} failed: {err}") from None
        symbols = _run([self.tc.nm, "-S", "-C", "--defined-only", str(obj)], self.tree)
        for line in symbols.splitlines():
            parts = line.split(maxsplit=3)
            if len(parts) != 4:
                continue
            if t := _TYPE_SYMBOL.search(parts[3]):
                self.probes[int(t[1])].types.append(re.sub(r"^const ", "", t[2]))
            elif m := _PROBE_SYMBOL.search(parts[3]):
                probe = self.probes[int(m[2])]
                (probe.sizes if m[1] == "probe" else probe.aligns).append(int(parts[1], 16))

    def run(self) -> None:
        """Compile every probed source (in parallel) and fill in the sizes."""
        by_path: dict[str, list[Probe]] = {}
        for p in self.probes:
            by_path.setdefault(p.path, []).append(p)
        with ThreadPoolExecutor(self.jobs) as pool:
            list(pool.map(lambda item: self._compile(*item), sorted(by_path.items())))
        for p in self.probes:
            p.sizes = sorted(set(p.sizes))
            p.aligns = sorted(set(p.aligns))
            p.types = sorted(set(p.types))


# --------------------------------------------------------------------------- the resolver


def _builtin_ops(repo: Path) -> list[str]:
    """``TFLM_BUILTIN_OPS`` of tfnas/memory/kernels/__init__.py, read without importing it."""
    tree = ast.parse((repo / "tfnas/memory/kernels/__init__.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "TFLM_BUILTIN_OPS" for t in node.targets
        ):
            for sub in ast.walk(node.value):
                if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                    return sorted(sub.value.split())
    raise SizesError("TFLM_BUILTIN_OPS not found in tfnas/memory/kernels/__init__.py")


def _resolver(tree: Path) -> dict[str, tuple[str, str]]:
    """opcode -> (default registration function, parser) from the mutable op resolver."""
    text = _strip_comments((tree / RESOLVER_H).read_text())
    out = {}
    for m in re.finditer(
        r"AddBuiltin\(\s*BuiltinOperator_(\w+)\s*,(.*?),\s*(\w+)\s*\)\s*;", text, re.S
    ):
        opcode, reg, parser = m[1], m[2], m[3]
        direct = re.search(r"(Register_\w+)\s*\(\s*\)", reg)
        if direct is None:
            add = list(re.finditer(r"TfLiteStatus\s+Add\w+\s*\(([^{]*)\)\s*\{", text[: m.start()]))
            default = re.search(r"(Register_\w+)\s*\(\s*\)", add[-1][1]) if add else None
            if default is None:
                raise SizesError(f"{RESOLVER_H}: no default registration for {opcode}")
            direct = default
        out[opcode] = (direct[1], parser)
    return out


# --------------------------------------------------------------------------- one target


@dataclass
class Alloc:
    """One ``AllocatePersistentBuffer`` call."""

    where: str
    function: str
    expr: str
    conditional: bool
    probes: list[Probe]

    @property
    def exact(self) -> bool:
        """Whether the size is exactly one ``sizeof``."""
        if len(self.probes) != 1:
            return False
        operand = re.escape(self.probes[0].operand)
        return re.fullmatch(rf"sizeof\s*\(\s*{operand}\s*\)", self.expr) is not None


@dataclass
class OpInfo:
    """What one opcode's registration does on one target."""

    registration: str
    reg_where: str
    init: str | None
    prepare: str | None
    init_where: str = ""
    allocs: list[Alloc] = field(default_factory=list)
    parser: str = ""
    params: Probe | None = None
    params_where: str = ""
    params_type: str = ""


class TargetScan:
    """Finds registrations, Inits, parsers and Prepare-time allocations for one target."""

    def __init__(self, tc: Toolchain, tree: Path, workdir: Path, jobs: int) -> None:
        self.tc, self.tree, self.jobs = tc, tree, jobs
        self.prober = Prober(tc, tree, workdir, jobs)
        self.kernel_sources = [s for s in tc.sources if s.startswith(KERNELS_DIR)]
        self.raw = {s: _strip_comments((tree / s).read_text()) for s in self.kernel_sources}
        self.defined_in: dict[str, list[str]] = {}  # function name -> sources that may define it
        for path, text in self.raw.items():
            for name in set(_RAW_DEFINITION.findall(text)):
                self.defined_in.setdefault(name, []).append(path)
        self.units: dict[str, Unit] = {}
        self.notes: list[str] = []

    def unit(self, path: str) -> Unit:
        """The preprocessed ``path`` (cached)."""
        if path not in self.units:
            self.units[path] = _preprocess(self.tc, self.tree, path)
        return self.units[path]

    def preload(self, paths: Iterable[str]) -> None:
        """Preprocess ``paths`` in parallel."""
        todo = sorted(set(paths) - set(self.units))
        with ThreadPoolExecutor(self.jobs) as pool:
            units = pool.map(lambda p: _preprocess(self.tc, self.tree, p), todo)
            self.units.update(zip(todo, units, strict=True))

    def _candidates(self, name: str, prefer: str | None = None) -> list[tuple[Unit, int, int]]:
        """(unit, name offset, body offset) of the definitions of ``name`` that a call sees.

        Those in ``prefer`` (the caller's source) if it has any, else those in all
        kernel sources.
        """
        if prefer is not None:
            found = self.unit(prefer).definitions(name)
            if found:
                return [(self.unit(prefer), *d) for d in found]
        return [
            (self.unit(path), *d)
            for path in self.defined_in.get(name, [])
            for d in self.unit(path).definitions(name)
        ]

    def _definition(self, name: str, prefer: str | None = None) -> tuple[Unit, int, int]:
        """(unit, name offset, body offset) of the one definition of ``name``."""
        hits = self._candidates(name, prefer)
        if len(hits) != 1:
            where = [u.where(p) for u, p, _ in hits]
            raise SizesError(f"{self.tc.name}: {name} has {len(hits)} definitions: {where}")
        return hits[0]

    def registration(self, reg: str) -> tuple[str, str, str | None, str | None]:
        """(Register function, where, init, prepare), following ``return Register_Y();``."""
        seen = []
        while True:
            seen.append(reg)
            unit, _, body = self._definition(reg)
            text = unit.text[body : _match(unit.text, body)]
            m = re.search(r"\bRegisterOp\s*\(", text)
            if m is None:
                alias = re.fullmatch(
                    r"\{\s*return\s+(?:[\w:]*::)?(Register_\w+)\s*\(\s*\)\s*;\s*", text
                )
                if alias is None or alias[1] in seen:
                    raise SizesError(f"{unit.where(body)}: cannot read the registration {reg}")
                reg = alias[1]
                continue
            args = _split_args(text, m.end() - 1, angles=True)
            if len(args) < 3:
                raise SizesError(f"{unit.where(body)}: RegisterOp with {len(args)} arguments")

            def fn(arg: str) -> str | None:
                arg = re.sub(r"^(?:[\w]+::)+", "", arg.strip())
                return None if arg in ("nullptr", "NULL", "0") else arg

            return reg, unit.where(body), fn(args[0]), fn(args[1])

    def _allocs_in(self, unit: Unit, body: int, function: str) -> list[Alloc]:
        """Every ``AllocatePersistentBuffer(...)`` call in the function whose body is at ``body``."""
        end = _match(unit.text, body)
        out = []
        for m in re.finditer(r"\bAllocatePersistentBuffer\s*\(", unit.text[body:end]):
            out.append(self._alloc(unit, body + m.start(), body + m.end() - 1, body, function))
        return out

    def _alloc(self, unit: Unit, pos: int, open_pos: int, body: int, function: str) -> Alloc:
        args = _split_args(unit.text, open_pos)
        if len(args) not in (1, 2):
            raise SizesError(f"{unit.where(pos)}: AllocatePersistentBuffer with {args}")
        expr = args[-1]
        start = _statement_start(unit.text, pos, body)
        depth = unit.text[body:start].count("{") - unit.text[body:start].count("}")
        conditional = (
            depth > 1 or re.match(r"(if|for|while|switch|else)\b", unit.text[start:]) is not None
        )
        probes = [
            self.prober.before_statement(unit, pos, body, operand)
            for operand in _sizeof_operands(expr)
        ]
        return Alloc(unit.where(pos), function, expr, conditional, probes)

    def op(self, opcode: str, reg: str, parser: str, parsers: Unit) -> OpInfo:
        """Registration, Init allocations and parser allocation of one opcode."""
        reg, reg_where, init, prepare = self.registration(reg)
        info = OpInfo(reg, reg_where, init, prepare, parser=parser)
        if init is not None:
            reg_path = reg_where.rsplit(":", 1)[0]
            unit, name_pos, body = self._definition(init, prefer=reg_path)
            info.init_where = unit.where(name_pos)
            info.allocs = self._allocs_in(unit, body, init)
        found = parsers.definitions(parser)
        if len(found) != 1:
            raise SizesError(f"{PARSERS_CC}: {parser} has {len(found)} definitions")
        body = found[0][1]
        text = parsers.text[body : _match(parsers.text, body)]
        calls = list(re.finditer(r"\.\s*Allocate(?:POD)?\s*<\s*(\w+)\s*>\s*\(\s*\)", text))
        others = set(re.findall(r"\b(Parse\w+)\s*\(", text)) - {parser}
        if others:
            raise SizesError(f"{parsers.where(body)}: {parser} calls {sorted(others)}")
        if len(calls) > 1:
            raise SizesError(f"{parsers.where(body)}: {parser} allocates {len(calls)} times")
        if calls:
            pos = body + calls[0].start()
            info.params_type = calls[0][1]
            info.params_where = parsers.where(pos)
            info.params = self.prober.before_statement(parsers, pos, body, info.params_type)
        return info

    def reach(self, path: str, name: str) -> set[tuple[str, str]]:
        """(source, function) of ``name`` (as seen from ``path``) and of all it calls.

        Only functions defined in kernel sources are followed: those of the caller's
        source when it defines the name (every overload), else the one definition
        elsewhere.
        """
        found: set[tuple[str, str]] = set()
        visited: set[tuple[str, str]] = set()
        todo = [(path, name)]
        while todo:
            where, fn = todo.pop()
            fn = fn.split("<", 1)[0].strip()
            if (where, fn) in visited or fn not in self.defined_in:
                continue
            visited.add((where, fn))
            hits = self._candidates(fn, prefer=where)
            if len(hits) > 1 and hits[0][0].path != where:
                # File-local functions of other sources: which one a call means cannot
                # be told here, so only say so when one of them allocates.
                if any(
                    "AllocatePersistentBuffer" in u.text[b : _match(u.text, b)] for u, _, b in hits
                ):
                    self.notes.append(f"{self.tc.name}: call graph not followed into {fn}")
                continue
            for unit, _, body in hits:  # overloads in the caller's source: all of them
                found.add((unit.path, fn))
                text = unit.text[body : _match(unit.text, body)]
                todo += [(unit.path, c) for c in set(_CALLEE.findall(text)) - _KEYWORDS]
        return found

    def prepare_allocs(
        self, prepare_reach: dict[str, set[tuple[str, str]]], init_reach: dict[str, set]
    ) -> list[tuple[Alloc, list[str]]]:
        """``AllocatePersistentBuffer`` calls outside Inits, with the opcodes whose Prepare reaches them.

        Functions with the Init signature ``void* F(TfLiteContext*, const char*,
        size_t)`` are left out (registered Inits are measured as ``init``). A call
        that no listed Prepare reaches (e.g. the reference ``ConvPrepare``, still
        compiled in the CMSIS-NN build) is only noted, and a call that an Init
        reaches through a helper stops the script.
        """
        out = []
        for path in self.kernel_sources:
            if "AllocatePersistentBuffer" not in self.raw[path]:
                continue
            unit = self.unit(path)
            for m in re.finditer(r"\bAllocatePersistentBuffer\s*\(", unit.text):
                enclosing = _enclosing_function(unit.text, m.start())
                if enclosing is None:
                    raise SizesError(f"{unit.where(m.start())}: call outside a function")
                name, body = enclosing
                head = unit.text[max(0, body - 400) : body + 1]
                if re.search(_INIT_SIGNATURE.format(re.escape(name)), head):
                    continue
                via_init = sorted(op for op, r in init_reach.items() if (path, name) in r)
                if via_init:
                    raise SizesError(
                        f"Init of {via_init} allocates via {name} ({unit.where(m.start())})"
                    )
                ops = sorted(op for op, r in prepare_reach.items() if (path, name) in r)
                if not ops:
                    self.notes.append(
                        f"{self.tc.name}: no listed Prepare reaches {name} ({unit.where(m.start())})"
                    )
                    continue
                out.append((self._alloc(unit, m.start(), m.end() - 1, body, name), ops))
        return out


# --------------------------------------------------------------------------- main


@dataclass
class TargetResult:
    """One target's JSON part, per-opcode findings and notes."""

    part: dict
    infos: dict[str, OpInfo]
    notes: list[str]
    computed: list[dict]


def _one(values: list[int]) -> int | list[int]:
    return values[0] if len(values) == 1 else values


def scan_target(
    name: str, tree: Path, workdir: Path, jobs: int, ops: dict[str, tuple[str, str]]
) -> TargetResult:
    """Find, probe and compile everything for one target."""
    tc = _toolchain(name, tree)
    scan = TargetScan(tc, tree, workdir, jobs)
    wanted = {reg for reg, _ in ops.values()}
    scan.preload([PARSERS_CC])
    scan.preload(s for s, t in scan.raw.items() if any(r in t for r in wanted))
    parsers = scan.unit(PARSERS_CC)
    infos = {op: scan.op(op, reg, parser, parsers) for op, (reg, parser) in sorted(ops.items())}
    prepare_reach, init_reach = {}, {}
    for op, info in infos.items():
        reg_path = info.reg_where.rsplit(":", 1)[0]
        prepare_reach[op] = scan.reach(reg_path, info.prepare) if info.prepare else set()
        init_reach[op] = scan.reach(reg_path, info.init) if info.init else set()
    prepare = scan.prepare_allocs(prepare_reach, init_reach)
    runtime = {key: scan.prober.appended(ALLOCATOR_CC, cxx) for key, cxx in RUNTIME_STRUCTS.items()}
    scan.prober.run()

    def single(p: Probe, what: str) -> list[int]:
        if len(p.sizes) != 1 or len(p.aligns) != 1:
            raise SizesError(f"{name}: {what}: sizeof({p.operand}) gave {p.sizes}, {p.aligns}")
        return [p.sizes[0], p.aligns[0]]

    part: dict = {"init": {}, "params": {}, "prepare_structs": {}, "runtime": {}}
    notes = list(scan.notes)
    for op, info in infos.items():
        sizes = []
        for a in info.allocs:
            if not a.exact:
                raise SizesError(f"{name}: {op} Init allocates {a.expr} at {a.where}")
            sizes.append(single(a.probes[0], f"{op} Init at {a.where}")[0])
            if a.conditional:
                notes.append(f"{name}: {op} Init allocation at {a.where} is conditional")
        part["init"][op] = sizes
        p = info.params
        part["params"][op] = None if p is None else single(p, f"{op} parser {info.parser}")
    for key, p in runtime.items():
        part["runtime"][key] = single(p, key)

    structs: dict[str, list[dict]] = {}
    computed = []
    for a, opcodes in prepare:
        entry: dict = {"where": a.where, "function": a.function, "expr": a.expr}
        entry["opcodes"] = opcodes
        if a.conditional:
            entry["conditional"] = True
        if any(not p.sizes for p in a.probes):
            raise SizesError(f"{name}: the probe at {a.where} ({a.function}) left no symbol")
        if a.exact:
            p = a.probes[0]
            entry["type"] = _one(p.types)
            entry["size"], entry["align"] = _one(p.sizes), _one(p.aligns)
            key = p.types[0].rsplit("::", 1)[-1] if len(p.types) == 1 else p.operand
            structs.setdefault(key, []).append(entry)
        else:
            entry["sizeof"] = {p.operand: _one(p.sizes) for p in a.probes}
            computed.append(entry)
    for key, entries in sorted(structs.items()):
        for entry in entries:
            file = Path(entry["where"].rsplit(":", 1)[0]).name
            part["prepare_structs"][key if len(entries) == 1 else f"{key}@{file}"] = entry
    return TargetResult(part, infos, notes, computed)


def _source_line(info: OpInfo) -> str:
    if info.init is None:
        return f"{info.reg_where} {info.registration}: no Init"
    if not info.allocs:
        return f"{info.init_where} {info.init}: allocates nothing"
    return "; ".join(f"{a.where} {a.expr}" for a in info.allocs)


def _registration_line(info: OpInfo) -> str:
    return f"{info.reg_where} {info.registration}: init={info.init} prepare={info.prepare}"


def _check(targets: dict[str, dict]) -> list[str]:
    errors = []
    for target, known in KNOWN_INIT.items():
        for op, size in known.items():
            got = targets[target]["init"].get(op)
            if got != [size]:
                errors.append(f"{target} {op}: compiled {got}, measured [{size}]")
    return errors


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--tree", type=Path, default=DEFAULT_TREE, help="TFLM source tree (read only)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON file to write")
    ap.add_argument("--jobs", type=int, default=2, help="parallel compiler processes")
    args = ap.parse_args(argv)
    t0 = time.monotonic()

    builtin_ops = _builtin_ops(REPO)
    with tempfile.TemporaryDirectory(prefix="tflm_sizes_") as tmp:
        tree = Path(tmp) / "tflite-micro"
        shutil.copytree(args.tree, tree, symlinks=True)
        for p in [tree, *tree.rglob("*")]:
            if not p.is_symlink():
                p.chmod(p.stat().st_mode | 0o200)
        (tree / "tensorflow/lite/micro/tools/make/downloads/pigweed").mkdir(exist_ok=True)
        (tree / "tfnas_print_flags.mk").write_text(PRINT_FLAGS_MK)
        workdir = Path(tmp) / "obj"
        workdir.mkdir()

        resolver = _resolver(tree)
        missing = [op for op in builtin_ops if op not in resolver]
        if missing:
            raise SizesError(f"opcodes without an AddBuiltin in the resolver: {missing}")
        extra = sorted(set(resolver) - set(builtin_ops))
        ops = {op: resolver[op] for op in builtin_ops}

        results = {}
        for name in CONFIGS:
            t1 = time.monotonic()
            results[name] = scan_target(name, tree, workdir, args.jobs, ops)
            print(f"{name}: {time.monotonic() - t1:.0f} s", file=sys.stderr)

    targets = {name: r.part for name, r in results.items()}
    errors = _check(targets)
    if errors:
        raise SizesError("known sizes differ (wrong flags?):\n  " + "\n  ".join(errors))

    sources = {}
    for op in builtin_ops:
        ref, arm = results["host"].infos[op], results["cortex-m"].infos[op]
        cmsis = results["cortex-m-cmsis"].infos[op]
        if _source_line(arm) != _source_line(ref):
            raise SizesError(f"{op}: host and cortex-m use different sources")
        sources[op] = {
            "reference": _source_line(ref),
            "cmsis_nn": _source_line(cmsis),
            "registration": _registration_line(ref),
            "params": (
                f"{ref.params_where} {ref.parser} Allocate<{ref.params_type}>"
                if ref.params
                else f"{ref.parser} allocates nothing"
            ),
        }
        if _registration_line(cmsis) != _registration_line(ref):
            sources[op]["registration_cmsis_nn"] = _registration_line(cmsis)
    messages = sorted({n for r in results.values() for n in r.notes})
    result = {
        "tflm_commit": TFLM_COMMIT,
        "generated_by": "tools/tflm_kernel_sizes.py",
        "targets": targets,
        "sources": sources,
        "notes": {
            "resolver_builtins_not_in_TFLM_BUILTIN_OPS": extra,
            "messages": messages,
            "computed_persistent_allocations": {n: r.computed for n, r in results.items()},
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")

    print(f"wrote {args.out} in {time.monotonic() - t0:.0f} s")
    print(f"{'opcode':30s} {'host':>10s} {'cortex-m':>10s} {'cmsis':>10s}")
    for op in builtin_ops:
        row = [",".join(map(str, targets[t]["init"][op])) or "-" for t in CONFIGS]
        print(f"{op:30s} {row[0]:>10s} {row[1]:>10s} {row[2]:>10s}")
    for n in messages:
        print("note:", n)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SizesError as err:
        print(f"tflm_kernel_sizes: {err}", file=sys.stderr)
        sys.exit(1)
