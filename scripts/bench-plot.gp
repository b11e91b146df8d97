# SPDX-License-Identifier: GPL-2.0
#
# The plot of scripts/bench, from the .dat files scripts/bench-tables.py
# wrote. Variables, set with -e before this file:
#   out      the directory of the .dat files; the plot goes to out/bench.png
#   term     the gnuplot terminal: pngcairo, or png
#   map      the third panel's data: map_touch_unmap, or touch_write when
#            there are no map results
#   mapcols  the number of columns of map.dat (size, then one a variant)
eval 'set terminal '.term.' size 1600,1200'
set output out.'/bench.png'
set termoption noenhanced
set datafile missing '?'
set key autotitle columnhead left top font ',9'
set logscale xy 2
set format x '%.0b %BB'
set xlabel 'mapping size'
set grid
set multiplot layout 2,2 title 'mmap_buf benchmark under QEMU/TCG (medians; absolute times are distorted)'
set ylabel 'ns per page'
set title 'first touch, one load per page: mmap_buf (PMD, misaligned, pages) and peers'
plot for [i=2:8] out.'/touch_read_large.dat' using 1:i with linespoints
set title 'first touch, one store per page: mmap_buf (PMD, misaligned, pages) and peers'
plot for [i=2:8] out.'/touch_write_large.dat' using 1:i with linespoints
if (map eq 'map_touch_unmap') {
	set title 'mmap + store per page + munmap'
} else {
	set title 'first touch, one store per page, every variant'
}
plot for [i=2:mapcols] out.'/'.map.'.dat' using 1:i with linespoints
set title 'pread (solid) / pwrite (dashed) and memcpy bandwidth'
set xlabel 'transfer size'
set ylabel 'MB/s'
set logscale y 10
plot for [i=2:4] out.'/read_bw.dat' using 1:i with linespoints title columnhead(i).' read', \
     for [i=2:4] out.'/write_bw.dat' using 1:i with linespoints dt 2 title columnhead(i).' write'
unset multiplot
