"""
convpool against its peers
==========================

The speed-ups of the :doc:`benchmark tables <../benchmarks>`, drawn: each dot is one row of a
table, convpool's time against the peer its speed-up column names, measured in the same process
with the same 2 threads (the faster of PyTorch's NCHW and channels_last layouts and ONNX Runtime
where the table has them). Dots right of the line at 1 are rows where convpool is faster. The
numbers are read from the tables themselves (each with its command and machine on that page),
not measured here.
"""

import re
from pathlib import Path

import matplotlib.pyplot as plt

page = Path("../docs/benchmarks.md") if Path("../docs/benchmarks.md").exists() else Path("benchmarks.md")
if not page.exists():  # sphinx-gallery runs the script from the examples folder
    page = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def speed_up(cell):
    """The number of "6.7x", or the middle of a range "3.3–3.8x"; None for "-"."""
    numbers = [float(value) for value in re.findall(r"\d+(?:\.\d+)?", cell)]
    return sum(numbers) / len(numbers) if numbers else None


tables, heading = [], None
lines = page.read_text().splitlines()
for index, line in enumerate(lines):
    if line.startswith("## "):
        heading = line[3:]
    if line.startswith("|") and index + 1 < len(lines) and lines[index + 1].startswith("|--"):
        header = [cell.strip() for cell in line.strip("|").split("|")]
        column = next((i for i, cell in enumerate(header) if cell.startswith("speed-up") and "per run" not in cell
                       and "second" not in cell), None)
        if column is None:
            continue
        rows = []
        for row in lines[index + 2:]:
            if not row.startswith("|"):
                break
            cells = [cell.strip() for cell in row.strip("|").split("|")]
            value = speed_up(cells[column])
            if value is not None:
                rows.append((" ".join(cells[:2]) if len(header) > 4 else cells[0], value))
        if rows:
            what = header[1] if header[0] == "op" else header[0]
            ops = sorted({name.split()[0] for name, _ in rows})
            label = f"{heading}: {what}" + (f" ({ops[0]})" if len(ops) == 1 else "")
            tables.append((label[:60], rows))

# %%
# One row per table, one dot per benchmark row (log scale); the bar spans the table's rows and the
# number is their median:
figure, axis = plt.subplots(figsize=(9, 0.42 * len(tables) + 1.2), layout="constrained")
for position, (title, rows) in enumerate(tables):
    values = sorted(value for _, value in rows)
    axis.hlines(position, values[0], values[-1], color="0.8", linewidth=6)
    axis.scatter(values, [position] * len(values), s=14, zorder=3,
                 c=["tab:green" if value >= 1 else "tab:red" for value in values])
    median = values[len(values) // 2]
    axis.annotate(f"{median:.2g}x", (values[-1], position), xytext=(6, -3), textcoords="offset points", fontsize=7)
axis.set_yticks(range(len(tables)), [title for title, _ in tables], fontsize=7)
axis.invert_yaxis()
axis.set_xscale("log")
axis.axvline(1, color="k", linewidth=0.8)
axis.set_xlabel("speed-up in each table's speed-up column (x); green: convpool faster")
axis.set_title("convpool against its peers, as the benchmark tables report")
print(f"{sum(len(r) for _, r in tables)} rows from {len(tables)} tables; "
      f"{sum(v >= 1 for _, r in tables for _, v in r)} at or above 1x")
