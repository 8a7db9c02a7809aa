// HTTP/1.1 over a bare TCP socket, for requests no HTTP client would send (bad framing, NUL in a
// header, duplicated headers, slow bodies). Sends the given bytes, reads until the server closes
// (or the time is up) and parses the first response.
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export type RawResponse = {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Everything the server sent, as latin1 text. */
  raw: string;
  /** The server closed the connection (FIN) rather than resetting it or leaving it open. */
  closedCleanly: boolean;
  /** An error on our side of the socket (EPIPE, ECONNRESET), if any. */
  socketError: string | null;
  ms: number;
};

export type RawOptions = {
  /** Give up (and destroy the socket) after this long. */
  timeoutMs?: number;
  /** Pieces written one after another with this pause between them. */
  pauseMs?: number;
  /** Wait for the server to close the connection, not only for the end of the answer. */
  untilClose?: boolean;
  /** The answer has no body whatever its headers say (an answer to HEAD). */
  noBody?: boolean;
  /** Keep writing after the server has closed its side (its FIN), as an uploading client does. */
  allowHalfOpen?: boolean;
};

/** Sends `parts` (a string, bytes, or pieces to write with pauses between) and reads the answer. */
export async function rawHttp(port: number, parts: string | Buffer | Array<string | Buffer>, opts: RawOptions = {}): Promise<RawResponse> {
  const started = Date.now();
  const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: opts.allowHalfOpen ?? false });
  const chunks: Buffer[] = [];
  const pieces = Array.isArray(parts) ? parts : [parts];
  let written = 0;
  let closedCleanly = false;
  let socketError: string | null = null;
  socket.on('data', (d) => {
    chunks.push(d);
    if (!opts.untilClose && answerComplete(Buffer.concat(chunks), opts.noBody ?? false)) socket.destroy();
  });
  socket.on('end', () => {
    closedCleanly = true;
    if (opts.allowHalfOpen && written === pieces.length) socket.end();
  });
  socket.on('error', (e: NodeJS.ErrnoException) => {
    socketError = e.code ?? e.message;
  });
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const timer = setTimeout(() => socket.destroy(), opts.timeoutMs ?? 5000);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  for (let i = 0; i < pieces.length; i++) {
    if (socket.destroyed || !socket.writable) break;
    if (i > 0 && opts.pauseMs) await sleep(opts.pauseMs);
    socket.write(pieces[i] as string | Buffer);
    written++;
  }
  if (opts.allowHalfOpen && closedCleanly) socket.end();
  await closed;
  clearTimeout(timer);
  return { ...parseResponse(Buffer.concat(chunks)), closedCleanly, socketError, ms: Date.now() - started };
}

/** Whether `data` holds a whole answer (1xx skipped): its head and, by its framing, its body. */
function answerComplete(data: Buffer, noBody: boolean): boolean {
  let raw = data.toString('latin1');
  while (/^HTTP\/1\.1 1\d\d /.test(raw) && raw.includes('\r\n\r\n')) raw = raw.slice(raw.indexOf('\r\n\r\n') + 4);
  const headEnd = raw.indexOf('\r\n\r\n');
  if (headEnd === -1) return false;
  if (noBody) return true;
  const head = raw.slice(0, headEnd).toLowerCase();
  if (/\r\ntransfer-encoding: *chunked/.test(head)) return raw.endsWith('\r\n0\r\n\r\n');
  const length = /\r\ncontent-length: *(\d+)/.exec(head);
  return length ? raw.length - headEnd - 4 >= Number(length[1]) : false;
}

/** The first response in `data` (a 1xx interim answer is skipped); chunked bodies are decoded. */
export function parseResponse(data: Buffer): Pick<RawResponse, 'status' | 'headers' | 'body' | 'raw'> {
  let raw = data.toString('latin1');
  while (/^HTTP\/1\.1 1\d\d /.test(raw) && raw.includes('\r\n\r\n')) raw = raw.slice(raw.indexOf('\r\n\r\n') + 4);
  const headEnd = raw.indexOf('\r\n\r\n');
  if (headEnd === -1) return { status: 0, headers: {}, body: '', raw };
  const [statusLine = '', ...lines] = raw.slice(0, headEnd).split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const start = data.length - Buffer.byteLength(raw, 'latin1') + headEnd + 4;
  let body = data.subarray(start);
  if (headers['transfer-encoding'] === 'chunked') body = dechunk(body);
  else if (headers['content-length'] !== undefined) body = body.subarray(0, Number(headers['content-length']));
  return { status: Number(statusLine.split(' ')[1] ?? 0), headers, body: body.toString('utf8'), raw };
}

function dechunk(data: Buffer): Buffer {
  const out: Buffer[] = [];
  let i = 0;
  for (;;) {
    const lineEnd = data.indexOf('\r\n', i);
    if (lineEnd === -1) break;
    const size = Number.parseInt(data.subarray(i, lineEnd).toString('latin1'), 16);
    if (!(size > 0)) break;
    out.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
    i = lineEnd + 2 + size + 2;
  }
  return Buffer.concat(out);
}

/** A request's bytes: request line, headers (in order, duplicates kept), and an optional body. */
export function requestBytes(
  method: string,
  path: string,
  headers: Array<[string, string]>,
  body?: string | Buffer,
  opts: { contentLength?: boolean } = {},
): Buffer {
  let head = `${method} ${path} HTTP/1.1\r\n`;
  for (const [name, value] of headers) head += `${name}: ${value}\r\n`;
  const payload = typeof body === 'string' ? Buffer.from(body) : body;
  if (payload && opts.contentLength !== false) head += `Content-Length: ${payload.length}\r\n`;
  return Buffer.concat([Buffer.from(`${head}\r\n`, 'latin1'), payload ?? Buffer.alloc(0)]);
}

/** A body in chunked transfer coding, cut at the given sizes. */
export function chunked(body: Buffer, sizes: number[]): Buffer {
  const parts: Buffer[] = [];
  let i = 0;
  for (const size of sizes) {
    if (i >= body.length) break;
    const piece = body.subarray(i, i + Math.max(1, size));
    parts.push(Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n'));
    i += piece.length;
  }
  if (i < body.length) parts.push(Buffer.from(`${(body.length - i).toString(16)}\r\n`), body.subarray(i), Buffer.from('\r\n'));
  parts.push(Buffer.from('0\r\n\r\n'));
  return Buffer.concat(parts);
}
