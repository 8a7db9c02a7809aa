// The server's memory footprint (bench/README.md, steps 11 and 12). V8 lets the old generation grow
// to about twice what survived the last full collection before it collects again, and before
// its first full collection it allows far more than that, so under load the process holds
// about as much garbage as live data, or more. A full collection once the server is ready, with
// the heap set to grow by 10 % over what survived it, keeps the peak close to the live set at no
// throughput cost we could measure. It is a growth factor, not a cap: a heap that needs more
// memory still gets it (a cap, --max-old-space-size, would crash the server when many large
// requests are in flight at once).
//
// WebAssembly runs on V8's baseline compiler only (--liftoff-only). undici parses HTTP with llhttp
// compiled to WebAssembly, and the optimising compiler's pass over it, in the background after
// the first upstream call, briefly took 30 MB, which was the process's peak. The baseline code
// costs undici about 10 µs more CPU per streamed answer in a micro-benchmark (47–58 against
// 55–69 µs), within the end-to-end noise (bench/README.md, step 12).
import v8 from 'node:v8';
import vm from 'node:vm';

export function tuneHeap(): void {
  v8.setFlagsFromString('--heap-growing-percent=10');
  v8.setFlagsFromString('--liftoff-only');
  // `gc` is exposed to contexts created after the flag is set; this process's own global stays as it was.
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  gc();
}
