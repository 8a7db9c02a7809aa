// Server-sent events out: `data: <json>\n\n` frames, `data: [DONE]` at the end, an error as
// `data: {"error":…}` (what the OpenAI SDKs turn into an APIError mid-stream). Honours
// backpressure so a slow reader cannot make us buffer a whole answer, and never waits on a
// reader for longer than its deadline: a client that stops reading is cut off, not waited for.
import type { ServerResponse } from 'node:http';

export const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  // Tells nginx and similar proxies not to buffer the stream.
  'x-accel-buffering': 'no',
} as const;

export type SseOptions = {
  /** The longest one wait for a reader to drain may take; then the connection is closed. */
  stallMs: number;
  /** Ends every wait at once (the request was ended: deadline, shutdown). */
  signal: AbortSignal;
  /** After the last write, how long a reader has to take it before the connection is closed. */
  lingerMs: number;
};

export class SseWriter {
  /** Frames not yet written: those of one upstream read leave together, in one write. */
  private pending = '';
  private flushScheduled = false;
  /** Set while the socket is over its high-water mark; the next send waits for it to drain. */
  private draining: Promise<void> | undefined;
  /** The reader stopped taking data for longer than its deadline, and was cut off. */
  stalled = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly opts: SseOptions,
  ) {}

  get open(): boolean {
    return !this.res.destroyed && !this.res.writableEnded;
  }

  /**
   * Queues one event. While the reader is behind it returns a promise the caller awaits before
   * its next send (so at most one event waits beyond the socket's high-water mark); otherwise
   * nothing, so that a stream the reader keeps up with costs no promise per event.
   */
  send(data: unknown, event?: string): Promise<void> | undefined {
    if (!this.open) return undefined;
    // One res.write per upstream read, not one per event: the events of a read are queued here
    // and written on the next tick, as one chunk of the chunked body.
    this.pending += event ? `event: ${event}\ndata: ${JSON.stringify(data)}\n\n` : `data: ${JSON.stringify(data)}\n\n`;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(this.flush);
    }
    return this.draining;
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    const frames = this.pending;
    this.pending = '';
    if (!frames || !this.open) return;
    if (!this.res.write(frames) && !this.opts.signal.aborted) this.draining = this.drained();
  };

  /** Resolves on 'drain', on close, when the request is ended, or at the stall deadline (closing the connection). */
  private drained(): Promise<void> {
    const { res, opts } = this;
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        res.off('drain', done);
        res.off('close', done);
        opts.signal.removeEventListener('abort', done);
        this.draining = undefined;
        resolve();
      };
      const timer = setTimeout(() => {
        this.stalled = true;
        res.destroy();
        done();
      }, opts.stallMs);
      res.on('drain', done);
      res.on('close', done);
      opts.signal.addEventListener('abort', done);
    });
  }

  /** The end of a successful stream: what is queued, then `[DONE]`, in one write. */
  done(): void {
    this.finish(`${this.takePending()}data: [DONE]\n\n`);
  }

  /** The end of a failed stream (its error event queued by send), or of one that has no [DONE]. */
  end(): void {
    this.finish(this.takePending());
  }

  private finish(last: string): void {
    if (!this.open) return;
    const { res } = this;
    res.end(last);
    if (res.writableFinished) return;
    // A reader that does not take the last bytes within the linger time is cut off, so the
    // connection cannot outlive the request (the request is settled already).
    const timer = setTimeout(() => res.destroy(), this.opts.lingerMs);
    timer.unref();
    res.once('close', () => clearTimeout(timer));
  }

  private takePending(): string {
    const frames = this.pending;
    this.pending = '';
    return frames;
  }
}
