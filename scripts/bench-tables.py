#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
#
# The tables of scripts/bench: reads the benchmark's CSV (guest/bench.c,
# one row per measurement), prints per benchmark a table of ratios of
# variants measured side by side in the same repeat, as 'median (min-max)'
# over the repeats, and the performance targets; writes the medians that
# scripts/bench-plot.gp plots as OUTDIR/<benchmark>.dat.
#
# Usage: scripts/bench-tables.py BENCH.CSV OUTDIR
import csv, statistics, sys
from collections import defaultdict

path, outdir = sys.argv[1], sys.argv[2]
# data[bench][variant][size][repeat] = row
data = defaultdict(lambda: defaultdict(lambda: defaultdict(dict)))
for r in csv.DictReader(open(path)):
    data[r["benchmark"]][r["variant"]][int(r["size_bytes"])][int(r["repeat"])] = r

SHORT = {"mmap_buf": "mb", "memfd_filled": "mfill", "memfd_fresh": "mfresh",
         "anon_private": "anon", "memfd": "memfd", "memcpy": "memcpy",
         "mmap_buf_1pg": "mb_1pg", "mmap_buf_misaligned": "mb_mis",
         "mmap_buf_pages": "mb_pages", "memfd_thp": "mthp", "hugetlb": "htlb",
         "anon_thp": "athp"}
KINDS = ["mmap_buf", "memfd_filled", "memfd_fresh", "anon_private"]
LARGE = ["mmap_buf_misaligned", "mmap_buf_pages", "memfd_thp", "hugetlb", "anon_thp"]
PAGE_VARIANTS = KINDS + LARGE + [k + "+populate" for k in KINDS] + ["mmap_buf_1pg"]

def short(v):
    base, _, pop = v.partition("+")
    s = SHORT.get(base, base)
    return s + ("+P" if pop else "")

def size_str(n):
    for unit, m in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if n >= m and n % m == 0:
            return "%d%s" % (n // m, unit)
    return str(n)

def value(row, metric):
    v = row.get(metric) or ""
    return float(v) if v else None

def num(x):
    return "%.0f" % x if x >= 100 else "%.3g" % x

def fmt(vals):
    if not vals:
        return "-"
    return "%s (%s-%s)" % (num(statistics.median(vals)), num(min(vals)), num(max(vals)))

def table(bench, metric, title, absname, absunit, abs_scale, cols):
    """cols: (label, numerator variant, denominator variant)"""
    d = data.get(bench)
    if not d or absname not in d:
        return
    sizes = sorted(d[absname])
    heads = ["size", "%s %s" % (short(absname), absunit)] + [c[0] for c in cols]
    rows = []
    for s in sizes:
        a = [value(r, metric) * abs_scale for r in d[absname][s].values()
             if value(r, metric) is not None]
        cells = [size_str(s), fmt(a)]
        for _, num, den in cols:
            ratios = []
            for rep, rn in d.get(num, {}).get(s, {}).items():
                rd = d.get(den, {}).get(s, {}).get(rep)
                if rd and value(rn, metric) and value(rd, metric):
                    ratios.append(value(rn, metric) / value(rd, metric))
            cells.append(fmt(ratios))
        rows.append(cells)
    w = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(heads)]
    print("\n== %s" % title)
    print("  ".join(h.rjust(w[i]) for i, h in enumerate(heads)))
    for r in rows:
        print("  ".join(c.rjust(w[i]) for i, c in enumerate(r)))

print("cells: median (min-max) over repeats of the ratio within one repeat;")
print("mb=mmap_buf mfill=memfd_filled mfresh=memfd_fresh anon=anon_private "
      "+P=MAP_POPULATE (mmap timed too)")
print("mb_mis=mmap_buf mapped off PMD alignment mb_pages=mmap_buf of single pages "
      "(max_folio_order=0) mthp=memfd in PMD folios (shmem_enabled=always) "
      "htlb=MFD_HUGETLB memfd athp=anon MADV_HUGEPAGE")

for bench, what in (("touch_read", "one load per page"),
                    ("touch_write", "one store per page")):
    ref = "memfd_filled"
    table(bench, "ns_per_page",
          "%s: first touch, %s; ns/page ratio to %s (>1 = slower)" % (bench, what, ref),
          ref, "ns/page", 1,
          [(short(v) + "/mfill", v, ref) for v in PAGE_VARIANTS if v != ref])
    table(bench, "ns_per_page",
          "%s: +populate (mmap+touch) over demand touch, same kind (<1 = populate cheaper)" % bench,
          "mmap_buf", "ns/page", 1,
          [(short(k) + "+P/" + short(k), k + "+populate", k) for k in KINDS])

# The targets of the driver's performance, as ratios measured side by side.
def targets():
    print("\n== targets (median (min-max) of the ratio within a repeat)")
    rows = []
    def ratio_cells(bench, metric, num, den, sizes):
        d = data.get(bench, {})
        out = []
        for s in sizes:
            r = [value(rn, metric) / value(d[den][s][rep], metric)
                 for rep, rn in d.get(num, {}).get(s, {}).items()
                 if rep in d.get(den, {}).get(s, {}) and value(rn, metric)
                 and value(d[den][s][rep], metric)]
            if r:
                out.append((s, r))
        return out
    big = lambda sizes: [s for s in sizes if (64 << 20) <= s <= (1 << 30)]
    for bench, pmd_max, what in (("touch_read", 0.25, "load"), ("touch_write", 0.05, "store")):
        d = data.get(bench, {})
        sizes = sorted(d.get("mmap_buf", {}))
        for s, r in ratio_cells(bench, "ns_per_page", "mmap_buf", "memfd_filled", big(sizes)):
            rows.append(("PMD-mapped first touch (%s) <= %gx memfd with its pages" % (what, pmd_max),
                         size_str(s), "mb/mfill", fmt(r), statistics.median(r) <= pmd_max))
        for s, r in ratio_cells(bench, "ns_per_page", "mmap_buf", "memfd_thp", big(sizes)):
            rows.append(("PMD-mapped first touch (%s) <= 1.0x shmem THP memfd" % what,
                         size_str(s), "mb/mthp", fmt(r), statistics.median(r) <= 1.0))
        mis_max = 0.3 if what == "store" else 1.0
        for s, r in ratio_cells(bench, "ns_per_page", "mmap_buf_misaligned", "memfd_filled",
                                big(sizes)):
            rows.append(("misaligned (PTEs) first touch (%s) <= %gx memfd with its pages"
                         % (what, mis_max),
                         size_str(s), "mb_mis/mfill", fmt(r), statistics.median(r) <= mis_max))
        for s, r in ratio_cells(bench, "ns_per_page", "mmap_buf", "memfd_filled", sizes):
            rows.append(("demand first touch (%s) <= memfd with its pages" % what,
                         size_str(s), "mb/mfill", fmt(r), statistics.median(r) <= 1.0))
        for s, r in ratio_cells(bench, "ns_per_page", "mmap_buf_1pg", "mmap_buf+populate", sizes):
            rows.append(("populated >= 5x cheaper than demand faulting (%s)" % what,
                         size_str(s), "mb_1pg/mb+P", fmt(r), statistics.median(r) >= 5.0))
        flat = [(s, statistics.median([value(x, "ns_per_page") for x in d["mmap_buf"][s].values()]))
                for s in sizes if s >= 4 << 20]
        if flat:
            base = flat[0][1]
            for s, v in flat:
                rows.append(("cost per page flat (within 20%%) or falling from 4M (%s)" % what,
                             size_str(s), "mb/mb@4M", "%.3g" % (v / base), v / base <= 1.2))
    for bench in ("read_bw", "write_bw"):
        d = data.get(bench, {})
        for s, r in ratio_cells(bench, "bytes_per_s", "mmap_buf", "memfd",
                                sorted(d.get("mmap_buf", {}))):
            rows.append(("%s >= 1.0x memfd p%s" % (bench[:-3], bench[:-3]),
                         size_str(s), "mb/memfd", fmt(r), statistics.median(r) >= 1.0))
    d = data.get("fork", {})
    for s, r in ratio_cells("fork", "ns_per_op", "mmap_buf", "none",
                            sorted(d.get("mmap_buf", {}))):
        rows.append(("fork() with a touched mapping <= 1.1x fork() without",
                     size_str(s), "mb/none", fmt(r), statistics.median(r) <= 1.1))
    if not rows:
        return
    w = [max(len(str(r[i])) for r in rows) for i in range(4)]
    met = sum(1 for r in rows if r[4])
    for r in rows:
        print("  ".join(str(c).ljust(w[i]) for i, c in enumerate(r[:4])) +
              ("  met" if r[4] else "  NOT MET"))
    print("targets: %d of %d cells met" % (met, len(rows)))

targets()

table("map_unmap", "ns_per_op",
      "map_unmap: mmap+munmap; ns per mapping ratio to memfd_filled (>1 = slower)",
      "memfd_filled", "ns/map", 1,
      [(short(v) + "/mfill", v, "memfd_filled") for v in PAGE_VARIANTS if v != "memfd_filled"])
table("map_touch_unmap", "ns_per_page",
      "map_touch_unmap: mmap + store per page + munmap; ns/page ratio to memfd_filled",
      "memfd_filled", "ns/page", 1,
      [(short(v) + "/mfill", v, "memfd_filled") for v in PAGE_VARIANTS if v != "memfd_filled"])
for bench in ("read_bw", "write_bw"):
    table(bench, "bytes_per_s",
          "%s: bytes/s ratio (>1 = faster); mmap_buf/memfd = p%s of the driver vs a memfd"
          % (bench, bench[:-3]),
          "memcpy", "MB/s", 1e-6,
          [("mb/memcpy", "mmap_buf", "memcpy"), ("memfd/memcpy", "memfd", "memcpy"),
           ("mb/memfd", "mmap_buf", "memfd")])
table("fault_threads", "ns_per_page",
      "fault_threads: store per page, wall ns/page; 2t/1t <1 = two threads faster",
      "mmap_buf_1t", "ns/page", 1,
      [(short(k) + " 2t/1t", k + "_2t", k + "_1t")
       for k in KINDS + ["mmap_buf_pages", "cpu_loop"]] +
      [("mb/mfill 1t", "mmap_buf_1t", "memfd_filled_1t"),
       ("mb/mfill 2t", "mmap_buf_2t", "memfd_filled_2t")])
table("fork", "ns_per_op",
      "fork: ns per fork() of a process with a mapping of every page touched, "
      "ratio to the same fork() without it (none)",
      "none", "ns/fork", 1,
      [("mb/none", "mmap_buf", "none"), ("mb_pages/none", "mmap_buf_pages", "none"),
       ("mfill/none", "memfd_filled", "none"), ("anon/none", "anon_private", "none")])

# Medians for gnuplot: one file per benchmark, a column per variant.
def dat(bench, metric, variants, scale=1.0, name=None):
    d = data.get(bench, {})
    sizes = sorted({s for v in variants for s in d.get(v, {})})
    with open("%s/%s.dat" % (outdir, name or bench), "w") as f:
        f.write("size " + " ".join(variants) + "\n")
        for s in sizes:
            cells = []
            for v in variants:
                vals = [value(r, metric) for r in d.get(v, {}).get(s, {}).values()]
                vals = [x for x in vals if x is not None]
                cells.append("%.6g" % (statistics.median(vals) * scale) if vals else "?")
            f.write("%d %s\n" % (s, " ".join(cells)))

for b in ("touch_read", "touch_write", "map_touch_unmap"):
    dat(b, "ns_per_page", PAGE_VARIANTS)
# The large-folio peers alone, for the plot's first-touch panels.
for b in ("touch_read", "touch_write"):
    dat(b, "ns_per_page", ["mmap_buf", "mmap_buf_misaligned", "mmap_buf_pages",
                           "memfd_filled", "memfd_thp", "hugetlb", "anon_thp"],
        name=b + "_large")
for b in ("read_bw", "write_bw"):
    dat(b, "bytes_per_s", ["mmap_buf", "memfd", "memcpy"], 1e-6)
