// How one API request can end early: its client goes away (or stops reading), the backend runs
// past the deadline, or the server shuts down. One AbortController and one timer per request
// (AbortSignal.any and AbortSignal.timeout cost more and showed in profiles); the backend call
// and every wait on the client get the signal, so nothing a request waits for outlives it.
import type { ServerResponse } from 'node:http';

export type EndReason = 'client_gone' | 'timeout' | 'shutdown';

export class RequestLifetime {
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;
  /** Why the request was ended early, if it was. */
  reason: EndReason | undefined;

  constructor(
    readonly res: ServerResponse,
    timeoutMs: number,
    registry?: InFlightRequests,
  ) {
    this.timer = setTimeout(() => this.end('timeout'), timeoutMs);
    registry?.add(this);
    // 'close' comes after every response, finished or not; only an unfinished one is a client gone.
    res.once('close', () => {
      clearTimeout(this.timer);
      registry?.delete(this);
      if (!res.writableFinished) this.end('client_gone');
    });
    // Gone before we started watching (while the body was read): 'close' has come and gone.
    if (res.destroyed || res.socket?.destroyed) this.end('client_gone');
  }

  /** Ends the request early (the first reason wins) and stops whatever it is waiting for. */
  end(reason: EndReason): void {
    if (this.reason) return;
    this.reason = reason;
    clearTimeout(this.timer);
    this.controller.abort();
  }

  /** The client closed the connection, or stopped reading for too long. */
  get clientGone(): boolean {
    return this.reason === 'client_gone';
  }

  /** The backend did not finish within the deadline. */
  get timedOut(): boolean {
    return this.reason === 'timeout';
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }
}

/** The /v1 requests in progress, so a shutdown can wait for them and then end the rest. */
export class InFlightRequests {
  private readonly requests = new Set<RequestLifetime>();
  private idle: (() => void) | undefined;

  add(r: RequestLifetime): void {
    this.requests.add(r);
  }

  delete(r: RequestLifetime): void {
    this.requests.delete(r);
    if (this.requests.size === 0) this.idle?.();
  }

  get size(): number {
    return this.requests.size;
  }

  /** Resolves when none is in progress, or after `ms`. */
  async settle(ms: number): Promise<void> {
    if (this.requests.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      this.idle = resolve;
      timer = setTimeout(resolve, ms);
    });
    clearTimeout(timer);
    this.idle = undefined;
  }

  /** Ends every request still in progress (each settles as cancelled, billed for what it produced). */
  endAll(reason: EndReason): number {
    const n = this.requests.size;
    for (const r of this.requests) r.end(reason);
    return n;
  }
}
