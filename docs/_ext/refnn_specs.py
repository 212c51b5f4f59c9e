"""Sphinx extension: the repository's ``specs/`` as pages with rendered equations, and every
``Spec: ID`` line of a docstring as links to the equations.

``specs/*.md`` write each equation once, in plain text, in an indented block under a heading
``### ID: title``. At build time each file becomes ``docs/specs/<file>.md`` (generated, not
committed): a label ``spec-<id>`` before each ID's heading, each equation block rendered by
MathJax (a conservative plain-text to LaTeX conversion) with the text as written kept under it,
and every ID the prose mentions linked to its equation. Docstrings' ``Spec:`` lines, wherever
numpydoc would have put them (inside Returns or Raises), become one ``Spec`` field at the end
linking each ID.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

ID = r"[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+"
HEADING = re.compile(rf"^###\s+({ID})\s*:\s*(.+?)\s*$")
SPEC_LINE = re.compile(rf"^\s*Spec:\s*((?:{ID})(?:\s*,\s*{ID})*)\s*$")

GREEK = {
    "Σ": r"\sum",
    "⊙": r"\odot",
    "θ": r"\theta",
    "β": r"\beta",
    "σ": r"\sigma",
    "∂": r"\partial",
    "λ": r"\lambda",
    "α": r"\alpha",
    "δ": r"\delta",
    "ε": r"\varepsilon",
    "τ": r"\tau",
    "π": r"\pi",
    "γ": r"\gamma",
    "Δ": r"\Delta",
    "∇": r"\nabla",
    "≈": r"\approx",
    "·": r"\cdot",
    "±": r"\pm",
    "√": r"\sqrt",
    "≤": r"\le",
    "≥": r"\ge",
    "∈": r"\in",
    "×": r"\times",
    "→": r"\to",
    "∞": r"\infty",
}
HATS = {"â": r"\hat{a}", "Â": r"\hat{A}", "ŷ": r"\hat{y}"}
FUNCTIONS = {
    "log",
    "exp",
    "max",
    "min",
    "tanh",
    "floor",
    "softmax",
    "col",
    "sqrt",
    "sign",
    "abs",
    "mean",
    "sum",
    "diag",
    "argmax",
}
#: Words that are variable names in the specs, never prose.
NAMES = {"dW", "dX", "db", "dA", "dZ", "dY", "dh", "dc", "da", "dx", "BT", "AT", "mo", "col"}


def label(spec_id: str) -> str:
    return "spec-" + spec_id.lower()


def _word(w: str, *, subscript: bool = False) -> str:
    if w in {"log", "exp", "max", "min", "tanh"}:
        return rf"\{w}"
    if w in FUNCTIONS:
        return rf"\operatorname{{{w}}}"
    if w in NAMES or (len(w) <= 2 and w not in {"if", "in", "or", "of", "to", "at", "on", "is"}):
        return w
    return rf"\text{{{w}}}" if subscript else rf"\text{{ {w} }}"


PROSE = re.compile(r"^\(?[A-Za-z][a-z]*(?:[-'][a-z]+)*[.,;:)]*$")


def _prose_runs(s: str) -> str:
    """Runs of two or more plain English words become one \\text{...} with their spaces."""
    tokens = s.split(" ")
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        words = [t for t in run if t]
        if len([w for w in words if len(w.strip(".,;:()")) >= 3]) >= 2:
            out.append("\x00TEXT{" + " ".join(run).strip() + "}\x00")
        else:
            out.extend(run)
        run.clear()

    for t in tokens:
        word = t.strip(".,;:()")
        if PROSE.match(t) and word not in FUNCTIONS - {"sum"} | NAMES | {"in", "x"}:
            run.append(t)
        else:
            flush()
            out.append(t)
    flush()
    return " ".join(out)


def _unmatched_braces(line: str) -> str:
    """A brace whose partner is on another line (a set written over two lines) is shown as a
    brace, not taken as a LaTeX group (which would unbalance the whole equation)."""
    stack: list[int] = []
    unmatched: set[int] = set()
    for i, ch in enumerate(line):
        if ch == "{":
            stack.append(i)
        elif ch == "}":
            if stack:
                stack.pop()
            else:
                unmatched.add(i)
    unmatched |= set(stack)
    return "".join(
        ("\x04" if ch == "{" else "\x05") if i in unmatched else ch for i, ch in enumerate(line)
    )


def to_latex(line: str) -> str:
    """One plain-text equation line of ``specs/`` as LaTeX for MathJax."""
    line = _unmatched_braces(line)
    s = re.sub(ID, lambda m: "\x00TEXT{" + m[0] + "}\x00", line.strip())  # an ID is a name
    s = _prose_runs(s)
    texts: list[str] = []

    def keep(m: re.Match[str]) -> str:
        texts.append(m[1])
        return f"\x00{len(texts) - 1}\x00"

    s = re.sub(r"\x00TEXT\{(.*?)\}\x00", keep, s)
    s = s.replace("\\", r"\backslash ")
    for ch in "#%&$":
        s = s.replace(ch, "\\" + ch)
    s = re.sub(r"\bin\s+R\^", r"\\in \\mathbb{R}^", s)
    s = re.sub(r"\bR\^\{", r"\\mathbb{R}^{", s)
    s = re.sub(r"\bin \{([^{}]*)\}", r"\\in \\{\1\\}", s)
    s = re.sub(r"(?<=\s)in(?=\s)", r"\\in", s)
    s = re.sub(r" {2,}", " \x01 ", s)
    s = re.sub(r"(?<=[^\s+\-=<>,(]) x (?=[^\s+\-=<>,)])", " \x03 ", s)  # n x m
    s = re.sub(r"(?<=[\w}\]')]) (?=[A-Za-z(\[ΣσδλβαθÂâ∂√])", "\x02", s)  # a product: W X
    s = re.sub(r"(?<![<>!=])<=", r" \\le ", s)
    s = re.sub(r">=", r" \\ge ", s)
    s = s.replace("!=", r" \ne ")
    s = s.replace("...", r" \ldots ").replace("..", r" \ldots ")
    for k, v in HATS.items():
        s = s.replace(k, v)
    s = s.replace("̂", "")  # a stray combining hat
    s = re.sub(r"(\w+)~", r"\\tilde{\1}", s)
    s = re.sub(r"(?<=\s)~(?=\s)", r"\\sim", s)
    s = re.sub(r"_([A-Za-z0-9*']+)", r"_{\1}", s)
    s = re.sub(r"\^([A-Za-z0-9*']+)", r"^{\1}", s)
    for k, v in GREEK.items():
        s = s.replace(k, v + " ")
    # words: functions upright, prose as text; not inside \commands
    s = re.sub(
        r"(?<![\\A-Za-z])([A-Za-z][A-Za-z.]*[A-Za-z.]|[A-Za-z])",
        lambda m: _word(m[1], subscript=m.string[m.start() - 1 : m.start()] == "{"),
        s,
    )
    s = s.replace("\x01", r"\quad").replace("\x02", r"\,").replace("\x03", r"\times")
    s = s.replace("\x04", r"\{").replace("\x05", r"\}")
    for i, t in enumerate(texts):
        t = re.sub(r"([#%&$_{}])", r"\\\1", t)
        s = s.replace(f"\x00{i}\x00", rf"\text{{ {t} }}")
    return s


def _math_block(lines: list[str], source: str) -> list[str]:
    rows = [to_latex(x) for x in lines if x.strip()]
    body = rows[0] if len(rows) == 1 else r"\begin{array}{l}" + r" \\ ".join(rows) + r"\end{array}"
    plain = "\n".join("    " + x for x in lines)
    return [
        "",
        "$$",
        body,
        "$$",
        "",
        "```{raw} html",
        f"<details class='spec-plain'><summary>as written in specs/{source}</summary>",
        "```",
        "",
        plain,
        "",
        "```{raw} html",
        "</details>",
        "```",
        "",
    ]


def _link_ids(text: str, defined: set[str]) -> str:
    """Prose mentions of a defined ID become links to its equation (not inside backticks);
    ``DENSE-*`` stays literal (not emphasis)."""
    parts = re.split(r"(`[^`]*`)", text)
    for i in range(0, len(parts), 2):
        parts[i] = parts[i].replace("-*", "-\\*")
        parts[i] = re.sub(
            rf"(?<![\w-])({ID})(?![\w-])",
            lambda m: f"{{ref}}`{m[1]} <{label(m[1])}>`" if m[1] in defined else m[1],
            parts[i],
        )
    return "".join(parts)


def convert(text: str, source: str, defined: set[str]) -> str:
    """One spec file as MyST Markdown."""
    out: list[str] = []
    lines = text.splitlines()
    in_section = False  # under a "## " heading: an ID's "###" is one level down, else a section
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("    ") and (
            i == 0 or not lines[i - 1].strip() or HEADING.match(lines[i - 1])
        ):
            block = []
            while i < len(lines) and (lines[i].startswith("    ") or not lines[i].strip()):
                if not lines[i].strip() and not (
                    i + 1 < len(lines) and lines[i + 1].startswith("    ")
                ):
                    break
                block.append(lines[i][4:])
                i += 1
            out += _math_block(block, source)
            continue
        match = HEADING.match(line)
        if match:
            level = "###" if in_section else "##"
            out += [f"({label(match[1])})=", f"{level} {match[1]}: {match[2]}"]
        elif line.startswith("#"):
            in_section = in_section or line.startswith("## ")
            out.append(line.replace("-*", "-\\*"))
        else:
            out.append(_link_ids(line, defined))
        i += 1
    return "\n".join(out) + "\n"


def defined_ids(specs: Path) -> set[str]:
    return {
        m[1]
        for path in specs.glob("*.md")
        for line in path.read_text(encoding="utf-8").splitlines()
        if (m := HEADING.match(line))
    }


def generate(specs: Path, out: Path) -> list[str]:
    """Write ``out/<file>.md`` for every spec file; returns the page names."""
    out.mkdir(parents=True, exist_ok=True)
    ids = defined_ids(specs)
    names = []
    for path in sorted(specs.glob("*.md")):
        name = "index" if path.name == "README.md" else path.stem
        text = convert(path.read_text(encoding="utf-8"), path.name, ids)
        if name == "index":
            text += (
                "\n```{toctree}\n:hidden:\n\n"
                + "\n".join(p.stem for p in sorted(specs.glob("*.md")) if p.name != "README.md")
                + "\n```\n"
            )
        target = out / f"{name}.md"
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
        names.append(name)
    return names


def _link_rst(line: str, defined: set[str]) -> str:
    """A defined ID in a docstring's prose becomes a link to its equation (not in code)."""
    if line.lstrip().startswith((">>>", "...")):
        return line
    parts = re.split(r"(``[^`]*``|`[^`]*`)", line)
    for i in range(0, len(parts), 2):
        parts[i] = re.sub(
            rf"(?<![\w-])({ID})(?![\w-])",
            lambda m: f":ref:`{m[1]} <{label(m[1])}>`" if m[1] in defined else m[1],
            parts[i],
        )
    return "".join(parts)


def _spec_field(app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    """Move every ``Spec: ID, ...`` line to one ``:Spec:`` field at the end, IDs linked; every
    other defined ID the docstring mentions links to its equation too."""
    defined = app.env.refnn_spec_ids
    ids: list[str] = []
    kept = []
    for line in lines:
        m = SPEC_LINE.match(line)
        if m:
            ids += [x.strip() for x in m[1].split(",")]
        else:
            kept.append(_link_rst(line, defined))
    lines[:] = kept
    if not ids:
        return
    refs = [f":ref:`{i} <{label(i)}>`" if i in defined else f"``{i}``" for i in ids]
    while kept and not kept[-1].strip():
        kept.pop()
    lines[:] = [*kept, "", ":Spec: " + ", ".join(refs), ""]


def _ids_into_env(app: Any, env: Any, docnames: Any) -> None:
    env.refnn_spec_ids = app.config.refnn_spec_ids


def setup(app: Any) -> dict[str, Any]:
    app.add_config_value("refnn_spec_ids", set(), "env", types=[set])
    app.connect("env-before-read-docs", _ids_into_env)
    app.connect("autodoc-process-docstring", _spec_field, priority=600)  # after numpydoc (500)
    return {"parallel_read_safe": True, "version": "1"}
