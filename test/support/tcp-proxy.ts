// A TCP proxy the test owns, between the server and its database, to make the database fail the
// way networks and servers fail without touching the shared PostgreSQL:
//   stall()   stops forwarding bytes in both directions; every socket stays open and new
//             connections are accepted but never answered (a server that stopped answering,
//             the hard case: nothing tells the client, only its deadlines can).
//   refuse()  resets every connection and every new one (a server that is down).
//   resume()  forwards new connections again. The connections that were stalled stay stalled
//             for good (their server went away without a word), so a client must discard them.
import { createServer, Socket } from 'node:net';

export type TcpProxy = {
  port: number;
  /** `url` with its host and port replaced by the proxy's. */
  via(url: string): string;
  stall(): void;
  refuse(): void;
  resume(): void;
  /** Connections accepted so far (each one a database connection the client opened). */
  readonly accepted: number;
  close(): Promise<void>;
};

type Pair = { client: Socket; upstream: Socket | null; stalled: boolean };

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  let mode: 'forward' | 'stall' | 'refuse' = 'forward';
  let accepted = 0;
  const pairs = new Set<Pair>();

  const server = createServer((client) => {
    accepted++;
    if (mode === 'refuse') {
      client.resetAndDestroy();
      return;
    }
    // A connection opened while stalled is accepted and never answered: no upstream at all.
    const upstream = mode === 'stall' ? null : new Socket();
    const pair: Pair = { client, upstream, stalled: mode === 'stall' };
    pairs.add(pair);
    const drop = () => {
      pairs.delete(pair);
      client.destroy();
      upstream?.destroy();
    };
    client.on('error', drop).on('close', drop);
    // A stalled connection swallows what it is sent and never answers.
    client.on('data', (chunk) => {
      if (!pair.stalled && upstream) upstream.write(chunk);
    });
    if (upstream) {
      upstream.on('error', drop).on('close', drop);
      upstream.on('data', (chunk) => {
        if (!pair.stalled) client.write(chunk);
      });
      upstream.connect(target.port, target.host);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;

  return {
    port,
    via(url) {
      const u = new URL(url);
      u.hostname = '127.0.0.1';
      u.port = String(port);
      return u.toString();
    },
    stall() {
      mode = 'stall';
      for (const p of pairs) p.stalled = true;
    },
    refuse() {
      mode = 'refuse';
      for (const p of pairs) {
        p.client.resetAndDestroy();
        p.upstream?.destroy();
      }
      pairs.clear();
    },
    resume() {
      mode = 'forward';
    },
    get accepted() {
      return accepted;
    },
    async close() {
      for (const p of pairs) {
        p.client.destroy();
        p.upstream?.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
