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
  private corked = false;

  constructor(private readonly res: ServerResponse) {}

  get open(): boolean {
    return !this.res.destroyed && !this.res.writableEnded;
  }

  async send(data: unknown): Promise<void> {
    if (!this.open) return;
    // Chunks that arrive together (one upstream read) leave together: one writev, not one
    // system call per event.
    if (!this.corked) {
      this.corked = true;
      this.res.cork();
      process.nextTick(() => {
        this.corked = false;
        this.res.uncork();
      });
    }
    if (!this.res.write(`data: ${JSON.stringify(data)}\n\n`)) {
      await Promise.race([once(this.res, 'drain'), once(this.res, 'close')]);
    }
  }

  done(): void {
    if (this.open) this.res.end('data: [DONE]\n\n');
  }

  end(): void {
    if (this.open) this.res.end();
  }
}
