// The limit any Node gateway can reach on this machine: a keep-alive forwarder with no auth, no
// billing, no parsing — read the body, send it upstream, stream the answer back.
import { createServer } from 'node:http';
import { Pool } from 'undici';

export function startForwarder(port: number, upstreamOrigin: string): Promise<void> {
  const pool = new Pool(upstreamOrigin, { connections: 128, keepAliveTimeout: 60_000 });
  const server = createServer(async (req, res) => {
    try {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const up = await pool.request({
        path: req.url ?? '/',
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: Buffer.concat(chunks),
      });
      res.writeHead(up.statusCode, { 'content-type': String(up.headers['content-type'] ?? 'application/json') });
      for await (const c of up.body) res.write(c);
      res.end();
    } catch {
      res.writeHead(502).end();
    }
  });
  server.keepAliveTimeout = 60_000;
  return new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop() as string)) {
  await startForwarder(Number(process.env.PORT), String(process.env.UPSTREAM));
  process.send?.('ready');
}
