#!/usr/bin/env python3
"""Draws the bench driver's JSON (bpfvm_bench --json) as an SVG bar chart: per program, the
time of native-vector and of every engine relative to native-scalar, on a log scale, with the
geometric means and the targets marked.

usage: bench/chart.py RESULTS.json OUT.svg     the chart
       bench/chart.py RESULTS.json --markdown   the table docs/PERFORMANCE.md shows, on stdout
"""
import json
import math
import sys
from xml.sax.saxutils import escape

# Per-engine targets (ratio to native-scalar) from the interpreter and JIT issues.
TARGETS = {"interp": 25.0, "jit": 1.5}
COLOURS = ["#7f7f7f", "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]

BAR_H = 9
GAP = 8
LEFT = 110
PLOT_W = 600
TOP = 56


def series_of(data):
    """[(label, [ratio or None per program], geomean or None)] in report order."""
    programs = data["programs"]
    out = []
    vec = [p["native_vector_ns"] / p["native_scalar_ns"] if p["native_scalar_ns"] else None for p in programs]
    out.append(("native-vector", vec, geomean(vec)))
    names = []
    for p in programs:
        for name in p["engines"]:
            if name not in names:
                names.append(name)
    for name in names:
        ratios = [p["engines"].get(name, {}).get("ratio") for p in programs]
        out.append((name, ratios, data.get("geomean", {}).get(name)))
    return out


def geomean(values):
    xs = [v for v in values if v]
    return math.exp(sum(math.log(v) for v in xs) / len(xs)) if xs else None


def fmt_ns(ns):
    return f"{ns / 1000:.1f}" if ns else "-"


def markdown(data):
    names = []
    for p in data["programs"]:
        for name in p["engines"]:
            if name not in names:
                names.append(name)
    head = ["program", "BPF insns", "native-scalar us", "native-vector us"]
    for n in names:
        head += [f"{n} us", f"{n} ratio", f"{n} ns/insn"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for p in data["programs"]:
        row = [p["name"], str(p["bpf_insns"]), fmt_ns(p["native_scalar_ns"]), fmt_ns(p["native_vector_ns"])]
        for n in names:
            e = p["engines"].get(n, {})
            row.append(fmt_ns(e.get("ns")))
            row.append(f"{e['ratio']:.1f}x" if e.get("ratio") else "-")
            row.append(f"{e['ns_per_insn']:.2f}" if e.get("ns_per_insn") else "-")
        lines.append("| " + " | ".join(row) + " |")
    row = ["**geomean**", "", "", ""]
    for n in names:
        g = data.get("geomean", {}).get(n)
        row += ["", f"**{g:.1f}x**" if g else "-", ""]
    lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def main(argv):
    if len(argv) != 3:
        sys.stderr.write(__doc__)
        return 64
    with open(argv[1]) as f:
        data = json.load(f)
    if argv[2] == "--markdown":
        sys.stdout.write(markdown(data))
        return 0
    programs = [p["name"] for p in data["programs"]]
    series = series_of(data)
    ratios = [r for _, rs, _ in series for r in rs if r] + [1.0]
    lo = min([0.5] + [r / 1.2 for r in ratios])
    hi = 10 ** math.ceil(math.log10(max(ratios + [t for t in TARGETS.values()])))

    def x(v):
        return LEFT + PLOT_W * (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))

    group_h = BAR_H * len(series) + GAP
    rows = programs + ["geomean"]
    height = TOP + group_h * len(rows) + 40
    width = LEFT + PLOT_W + 30
    svg = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{LEFT}" y="18" font-size="12" font-weight="bold">'
        f"Run time relative to native-scalar (clang -O2, no vectorisation), log scale: lower is faster</text>",
        f'<text x="{LEFT}" y="34" fill="#555">{escape(data["machine"])}, {data["cores"]} cores, '
        f'{escape(data["date"])}, median of {data["reps"]}</text>',
    ]
    # Grid lines at 1, 2 and 5 times each power of ten in range.
    decade = 10 ** math.floor(math.log10(lo))
    while decade <= hi:
        for g in (decade, 2 * decade, 5 * decade):
            if lo <= g <= hi * 1.0001:
                colour = "#999" if g == 1 else "#bbb" if g == decade else "#e5e5e5"
                svg.append(f'<line x1="{x(g):.1f}" y1="{TOP - 6}" x2="{x(g):.1f}" y2="{TOP + group_h * len(rows)}" '
                           f'stroke="{colour}"/>')
                svg.append(f'<text x="{x(g):.1f}" y="{TOP + group_h * len(rows) + 14}" text-anchor="middle">'
                           f"{g:g}x</text>")
        decade *= 10
    for name, target in TARGETS.items():
        if any(s[0] == name for s in series):
            svg.append(f'<line x1="{x(target):.1f}" y1="{TOP - 10}" x2="{x(target):.1f}" '
                       f'y2="{TOP + group_h * len(rows)}" stroke="black" stroke-dasharray="4,3"/>')
            svg.append(f'<text x="{x(target) + 3:.1f}" y="{TOP - 12}" font-size="10">{escape(name)} target {target:g}x</text>')
    for r, label in enumerate(rows):
        y0 = TOP + r * group_h
        weight = ' font-weight="bold"' if label == "geomean" else ""
        svg.append(f'<text x="{LEFT - 6}" y="{y0 + group_h / 2 + 2:.1f}" text-anchor="end"{weight}>'
                   f"{escape(label)}</text>")
        for k, (_, values, gm) in enumerate(series):
            v = gm if label == "geomean" else values[r]
            if not v:
                continue
            y = y0 + k * BAR_H
            x0, x1 = sorted((x(1.0), x(v)))
            svg.append(f'<rect x="{x0:.1f}" y="{y}" width="{max(x1 - x0, 1):.1f}" height="{BAR_H - 1}" '
                       f'fill="{COLOURS[k % len(COLOURS)]}"><title>{v:.2f}x</title></rect>')
            tx, anchor = (x(v) + 3, "start") if v >= 1 else (x(v) - 3, "end")
            svg.append(f'<text x="{tx:.1f}" y="{y + BAR_H - 1}" font-size="8" text-anchor="{anchor}">{v:.2g}x</text>')
    lx = LEFT
    ly = height - 10
    for k, (name, _, _) in enumerate(series):
        svg.append(f'<rect x="{lx}" y="{ly - 9}" width="10" height="10" fill="{COLOURS[k % len(COLOURS)]}"/>')
        svg.append(f'<text x="{lx + 14}" y="{ly}">{escape(name)}</text>')
        lx += 24 + 7 * len(name)
    svg.append("</svg>")
    with open(argv[2], "w") as f:
        f.write("\n".join(svg) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
