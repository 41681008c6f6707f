"""The ``convpool-headers`` directive: the C++ API reference, read from the public headers
(cpp/include/convpool/*.hpp) at build time. For each header it shows the header's own leading
comment, then each public entry point (the structs, classes, enums and functions outside the
``detail`` namespace) with its declaration and the comment above it, so that the page says what
the headers say and nothing else."""

import re
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import Directive

HEADERS = Path(__file__).resolve().parents[2] / "cpp" / "include" / "convpool"
# A declaration at column 0: a type, or a function whose name is followed by "(".
DECLARATION = re.compile(r"^(?:template <.*>\s*)?(?:(?:struct|class|enum class)\s+(?P<type>\w+)"
                         r"|(?:inline |constexpr |static )*[\w:<>]+[ *&]+(?P<function>\w+)\()")


def _leading_comment(lines):
    """The comment block a header starts with (after #pragma once), as text."""
    text = []
    for line in lines:
        if line.startswith("#pragma"):
            continue
        if not line.startswith("//"):
            break
        text.append(line[2:].strip())
    return " ".join(text)


def _entry_points(lines):
    """(name, declaration, comment) of each public declaration, in file order."""
    found, depth_in_detail, comment = [], 0, []
    for index, line in enumerate(lines):
        if line.startswith("namespace") and "detail" in line:
            depth_in_detail += 1
        elif line.startswith("}  // namespace") and "detail" in line:
            depth_in_detail -= 1
        if line.startswith("//"):
            comment.append(line[2:].strip())
            continue
        match = DECLARATION.match(line) if not depth_in_detail else None
        if match:
            declaration = line.rstrip(" {")
            if line.startswith("template") or (index and lines[index - 1].startswith("template")):
                declaration = (lines[index - 1] + " " + declaration) if not line.startswith("template") else declaration
            # A function's declaration goes on to the closing parenthesis, without its body.
            follow = index
            while match["function"] and declaration.count("(") > declaration.count(")") and follow + 1 < len(lines):
                follow += 1
                declaration += " " + lines[follow].strip().rstrip(" {")
            if match["function"]:
                declaration = declaration.split(" { ")[0]
            # A params struct is shown whole: its fields are the op's arguments.
            if match["type"] and line.startswith("struct") and line.rstrip().endswith("{"):
                body = []
                for following in lines[index + 1:index + 30]:
                    body.append(following)
                    if following.startswith("};"):
                        declaration = "\n".join([line.rstrip()] + body)
                        break
            found.append((match["type"] or match["function"], declaration.rstrip(";").strip(), " ".join(comment)))
        if not line.startswith("template"):
            comment = []
    return found


class ConvpoolHeaders(Directive):
    has_content = False

    def run(self):
        result = []
        for header in sorted(HEADERS.glob("*.hpp")):
            lines = header.read_text().splitlines()
            section = nodes.section(ids=[f"header-{header.stem}"])
            section += nodes.title(text=f"<convpool/{header.name}>")
            summary = _leading_comment(lines)
            if summary:
                section += nodes.paragraph(text=summary)
            points = _entry_points(lines)
            if points:
                listing = nodes.bullet_list()
                for name, declaration, comment in points:
                    item = nodes.list_item()
                    item += nodes.literal_block(text=declaration, language="cpp")
                    if comment:
                        item += nodes.paragraph(text=comment)
                    listing += item
                section += listing
            result.append(section)
            self.state.document.settings.record_dependencies.add(str(header))
        return result


def setup(app):
    app.add_directive("convpool-headers", ConvpoolHeaders)
    return {"parallel_read_safe": True}
