// Errors Node's HTTP server raises before (or instead of) handing a request to Fastify: bad
// framing, headers over the limit, a request not received in time, an Expect we cannot meet, a
// CONNECT. Each is answered on the socket in the same OpenAI shape as every other error, with an
// x-request-id (the request's own when Fastify has one), and the connection is closed. Also here:
// the drain that lets a client that is still uploading read its 413 (drainThenClose).
import { type IncomingMessage, type Server, type ServerResponse, STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyBaseLogger } from 'fastify';
import { ApiError } from '../errors.ts';
import { newId } from '../lib/ids.ts';

/** A socket we answered ourselves, or are draining after a 413: Node's later errors on it are not answered again. */
const kHandled = Symbol('bizora.answered');
type MarkedSocket = Socket & { [kHandled]?: true; _httpMessage?: ServerResponse | null };

/** How long a closed-off connection may linger so the client reads the answer before the close. */
const LINGER_MS = 1000;

const FRAMING_MESSAGES: Readonly<Record<string, string>> = {
  HPE_INVALID_METHOD: 'The request method is not a known HTTP method.',
  HPE_INVALID_URL: 'The request URL is not valid.',
  HPE_INVALID_VERSION: 'The HTTP version is not valid.',
  HPE_INVALID_HEADER_TOKEN: 'A request header is not valid (bad name, bad character, or a NUL byte).',
  HPE_INVALID_CONTENT_LENGTH: 'The Content-Length header is not valid.',
  HPE_UNEXPECTED_CONTENT_LENGTH: 'The request has both Content-Length and Transfer-Encoding.',
  HPE_INVALID_TRANSFER_ENCODING: 'The Transfer-Encoding header is not valid.',
  HPE_INVALID_CHUNK_SIZE: 'The chunked request body is not validly framed.',
  HPE_INVALID_EOF_STATE: 'The connection ended in the middle of the request.',
};

/** The ApiError for an error Node reports on a client connection. */
export function clientErrorToApiError(err: NodeJS.ErrnoException & { rawPacket?: Buffer }, maxUrlLength: number): ApiError {
  switch (err.code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new ApiError('request_timeout');
    case 'HPE_HEADER_OVERFLOW': {
      // The request line counts towards the header limit: when the line itself is what does not
      // fit, the URL is too long (414; it is never echoed). Otherwise the headers are (431).
      const packet = err.rawPacket;
      const lineEnd = packet?.indexOf(10) ?? -1;
      const startsRequest = !!packet && /^[A-Z-]+ /.test(packet.subarray(0, 16).toString('latin1'));
      return new ApiError(startsRequest && (lineEnd === -1 || lineEnd > maxUrlLength) ? 'uri_too_long' : 'headers_too_large');
    }
  }
  const message = (err.code && FRAMING_MESSAGES[err.code]) ?? 'The request is not valid HTTP/1.1.';
  return new ApiError('malformed_request', { message });
}

/**
 * The connections this module answers or drains itself, per app. Each closes on its own within
 * a bound (LINGER_MS after an answer, the drain's deadline); closeAll ends them at once when the
 * app closes, so that a shutdown never waits on them.
 */
export class ClientConnections {
  private readonly open = new Set<Socket>();
  /**
   * Connections that have not sent a request yet. Node times them out (408 at the request
   * deadline) but, once the server is closing, neither does that nor counts them as idle, so
   * app.close() would wait for the client to hang up (a browser's or undici's spare connection).
   */
  private readonly unused = new Set<Socket>();

  constructor(
    private readonly log: FastifyBaseLogger,
    private readonly maxUrlLength: number,
  ) {}

  private keep(socket: Socket): void {
    (socket as MarkedSocket)[kHandled] = true;
    if (this.open.has(socket)) return;
    this.open.add(socket);
    socket.once('close', () => this.open.delete(socket));
  }

  /** Writes `e` as a complete HTTP/1.1 answer straight to the socket, then closes the connection. */
  answer(socket: Socket, e: ApiError, requestId: string): void {
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    this.keep(socket);
    const body = JSON.stringify(e.toBody());
    let head = `HTTP/1.1 ${e.status} ${STATUS_CODES[e.status] ?? 'Error'}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nx-request-id: ${requestId}\r\n`;
    for (const [name, value] of Object.entries(e.headers)) head += `${name}: ${value}\r\n`;
    // end(), not destroy(): closing a socket with unread input resets it, and the client may
    // lose the answer. Whatever it still sends is ignored until the linger is over.
    socket.end(`${head}connection: close\r\n\r\n${body}`);
    const timer = setTimeout(() => socket.destroy(), LINGER_MS);
    socket.once('close', () => clearTimeout(timer));
  }

  /** Fastify's clientErrorHandler: Node's parser or request timer failed this connection. */
  onClientError(err: NodeJS.ErrnoException, socket: Socket): void {
    const marked = socket as MarkedSocket;
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    if (marked[kHandled]) {
      socket.destroy();
      return;
    }
    // Node keeps the response in flight on the socket (internal, long stable): if it has started,
    // another status line would corrupt it, so the connection is only closed.
    const res = marked._httpMessage;
    if (res?.headersSent) {
      socket.destroy();
      return;
    }
    const requestId = String(res?.getHeader('x-request-id') ?? newId('req'));
    const e = clientErrorToApiError(err, this.maxUrlLength);
    this.log.debug({ reqId: requestId, code: err.code, status: e.status }, 'client error');
    this.answer(socket, e, requestId);
  }

  /**
   * Node's own answers that bypass Fastify, answered in our shape: an Expect other than
   * 100-continue (417, where Node writes an empty 417), a body announced with Expect:
   * 100-continue that is over the limit (413 before the client uploads it), and CONNECT (this is
   * no proxy; Node would close the connection without a word).
   */
  listen(server: Server, bodyLimitBytes: number): void {
    server.on('connection', (socket: Socket) => {
      this.unused.add(socket);
      socket.once('close', () => this.unused.delete(socket));
    });
    server.prependListener('request', (req: IncomingMessage) => this.unused.delete(req.socket));
    server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
      this.answer(res.socket ?? req.socket, new ApiError('expectation_failed'), newId('req'));
    });
    server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
      if (Number(req.headers['content-length']) > bodyLimitBytes) {
        this.answer(res.socket ?? req.socket, new ApiError('body_too_large'), newId('req'));
        return;
      }
      res.writeContinue();
      server.emit('request', req, res);
    });
    server.on('connect', (_req: IncomingMessage, socket: Socket) => {
      const e = new ApiError('malformed_request', { message: 'This server is not a proxy: CONNECT is not supported.' });
      this.answer(socket, e, newId('req'));
    });
  }

  /**
   * After a 413 with `connection: close`: Node would close the socket as soon as the answer is
   * written, while the client is still uploading, and the client then sees a reset instead of
   * the answer (fetch failed about 1 in 3 times for 12 MB, and the openai SDK retried the
   * upload). Instead the answer goes out with a FIN, the rest of the body is read and discarded,
   * and the socket closes when the body is complete or after `maxMs`; at once (as before) when
   * the client announced more than `maxBytes` (a client sending that much is not waiting).
   */
  drainThenClose(req: IncomingMessage, maxBytes: number, maxMs: number): void {
    if (req.complete) return;
    if (Number(req.headers['content-length']) > maxBytes) return;
    const socket = req.socket;
    this.keep(socket);
    // Node ends a `connection: close` answer with socket.destroySoon() (end, then destroy once
    // flushed); this socket's own version ends now and destroys when the body is in or time is up.
    socket.destroySoon = function drainingDestroySoon(this: Socket) {
      if (this.writable) this.end();
      const timer = setTimeout(() => this.destroy(), maxMs);
      const close = () => {
        clearTimeout(timer);
        this.destroy();
      };
      this.once('close', () => clearTimeout(timer));
      if (req.complete) close();
      else req.once('end', close);
    };
  }

  /** Ends every connection still lingering or draining, or never used (the app is closing). */
  closeAll(): void {
    for (const socket of [...this.open, ...this.unused]) socket.destroy();
    this.open.clear();
    this.unused.clear();
  }
}
