// Server-sent events out: `data: <json>\n\n` frames, `data: [DONE]` at the end, an error as
// `data: {"error":…}` (what the OpenAI SDKs turn into an APIError mid-stream). Honours
// backpressure so a slow reader cannot make us buffer a whole answer.
import { once } from 'node:events';
import type { ServerResponse } from 'node:http';

export const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  connection: 'keep-alive',
  // Tells nginx and similar proxies not to buffer the stream.
  'x-accel-buffering': 'no',
} as const;

export class SseWriter {
  /** Frames not yet written: those of one upstream read leave together, in one write. */
  private pending = '';
  private flushScheduled = false;
  /** Set while the socket is over its high-water mark; the next send waits for it to drain. */
  private draining: Promise<void> | undefined;

  constructor(private readonly res: ServerResponse) {}

  get open(): boolean {
    return !this.res.destroyed && !this.res.writableEnded;
  }

  async send(data: unknown): Promise<void> {
    if (this.draining) await this.draining;
    if (!this.open) return;
    // One res.write per upstream read, not one per event: the events of a read are queued here
    // and written on the next tick, as one chunk of the chunked body.
    this.pending += `data: ${JSON.stringify(data)}\n\n`;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(() => this.flush());
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    const frames = this.pending;
    this.pending = '';
    if (!frames || !this.open) return;
    if (!this.res.write(frames)) {
      this.draining = Promise.race([once(this.res, 'drain'), once(this.res, 'close')]).then(() => {
        this.draining = undefined;
      });
    }
  }

  /** The end of a successful stream: what is queued, then `[DONE]`, in one write. */
  done(): void {
    if (this.open) this.res.end(`${this.takePending()}data: [DONE]\n\n`);
  }

  /** The end of a failed stream (its error event queued by send). */
  end(): void {
    if (this.open) this.res.end(this.takePending());
  }

  private takePending(): string {
    const frames = this.pending;
    this.pending = '';
    return frames;
  }
}
