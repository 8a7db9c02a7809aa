// The server's memory footprint (bench/README.md, steps 11, 12 and 17). The V8 flags that shape it
// are on the node command line (`npm start` and the `bizora` command's first line), because V8
// reads its flags only when it starts and setting them later is unsafe:
// --heap-growing-percent=10: V8 lets the old generation grow to about twice what survived the
//   last full collection before it collects again, and before its first full collection it
//   allows far more than that, so under load the process held about as much garbage as live
//   data. A full collection once the server is ready (below), with the heap set to grow by 10 %
//   over what survived it, keeps the peak close to the live set at no throughput cost we could
//   measure. It is a growth factor, not a cap: a heap that needs more memory still gets it.
// --liftoff-only: WebAssembly on V8's baseline compiler only. undici parses HTTP with llhttp
//   compiled to WebAssembly, and the optimising compiler's pass over it briefly took 30 MB, the
//   process's peak; the baseline code costs undici about 10 µs per streamed answer.
// --expose-gc: for the one collection below.

/** One full collection once start-up garbage is done with, when the process was started with --expose-gc. */
export function collectStartupGarbage(): void {
  (globalThis as { gc?: () => void }).gc?.();
}
