// The server's memory footprint (bench/README.md, "Peak RSS"). V8 lets the old generation grow
// to about twice what survived the last full collection before it collects again, so under load
// the process holds about as much garbage as live data. Growing by 10 % instead keeps the peak
// close to the live set, at no throughput cost we could measure. It is a growth factor, not a
// cap: a heap that needs more memory still gets it (a cap, --max-old-space-size, would crash the
// server when many large requests are in flight at once).
import v8 from 'node:v8';

export function tuneHeapGrowth(): void {
  v8.setFlagsFromString('--heap-growing-percent=10');
}
