// How one API request can end early: its client goes away, or the backend runs past the
// deadline. One AbortController and one timer per request (AbortSignal.any and
// AbortSignal.timeout cost more and showed in profiles); the backend call gets the signal.
import type { ServerResponse } from 'node:http';

export class RequestLifetime {
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;
  /** The client closed the connection before we finished answering. */
  clientGone = false;
  /** The backend did not finish within the deadline. */
  timedOut = false;

  constructor(res: ServerResponse, timeoutMs: number) {
    this.timer = setTimeout(() => {
      this.timedOut = true;
      this.controller.abort();
    }, timeoutMs);
    // 'close' comes after every response, finished or not; only an unfinished one is a client gone.
    res.once('close', () => {
      clearTimeout(this.timer);
      if (!res.writableFinished && !this.timedOut) {
        this.clientGone = true;
        this.controller.abort();
      }
    });
    if (res.destroyed || res.socket?.destroyed) {
      // Gone before we started watching (while the body was read): 'close' has come and gone.
      clearTimeout(this.timer);
      this.clientGone = true;
      this.controller.abort();
    }
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }
}
