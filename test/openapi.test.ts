// The OpenAPI document is generated from the routes' own schemas: every /v1, dashboard API and
// health route the server registers is in it with its method, a described answer and its errors,
// and nothing is in it that the server does not answer. The docs page serves it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Harness, startHarness } from './support/harness.ts';

type Operation = {
  responses?: Record<string, { content?: Record<string, { schema?: unknown }> }>;
  summary?: string;
  description?: string;
};
type Document = { openapi: string; paths: Record<string, Record<string, Operation>>; components?: { schemas?: Record<string, unknown> } };

/** Every (METHOD path) the app routes, from Fastify's own route tree (HEAD left out: Fastify adds it to every GET). */
function registeredRoutes(tree: string): Set<string> {
  const routes = new Set<string>();
  const stack: string[] = [];
  for (const line of tree.split('\n')) {
    const m = /^([│ ├└─]*)(\S.*?) \(([A-Z, ]+)\)$/.exec(line);
    if (!m) continue;
    const depth = (m[1] as string).length / 4;
    stack.length = depth;
    stack.push(m[2] as string);
    const path = stack.join('').replace(/\/+/g, '/');
    for (const method of (m[3] as string).split(', ')) if (method !== 'HEAD') routes.add(`${method} ${path}`);
  }
  return routes;
}

const isApiRoute = (route: string) => / (\/v1\/|\/dashboard\/api\/|\/healthz$|\/readyz$)/.test(route);

describe('the OpenAPI document', () => {
  let h: Harness;
  let doc: Document;
  before(async () => {
    h = await startHarness('sqlite');
    const res = await fetch(`${h.url}/openapi.json`);
    assert.equal(res.status, 200);
    doc = (await res.json()) as Document;
  });
  after(() => h.close());

  test('is OpenAPI 3.1 with the error body as a component', () => {
    assert.equal(doc.openapi, '3.1.0');
    assert.ok(doc.components?.schemas?.Error, 'the Error schema');
  });

  test('lists every /v1, dashboard API and health route the server answers, and no other', () => {
    const routes = [...registeredRoutes(h.app.printRoutes({ commonPrefix: false }))].filter(isApiRoute);
    // A model id with slashes is served by a wildcard alias of GET /v1/models/{id}, which
    // OpenAPI paths cannot express; that operation's description says so.
    const alias = 'GET /v1/models*';
    assert.ok(routes.includes(alias), 'the alias for model ids with slashes');
    assert.match(doc.paths['/v1/models/{id}']?.get?.description ?? '', /slash/);
    const served = routes.filter((r) => r !== alias).sort();
    assert.ok(served.length >= 20, `found ${served.length} routes in the route tree`);
    const documented = Object.entries(doc.paths)
      .flatMap(([path, ops]) => Object.keys(ops).map((method) => `${method.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`))
      .sort();
    assert.deepEqual(documented, served);
  });

  test('every operation has a summary, a described 2xx answer and its errors', () => {
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const where = `${method.toUpperCase()} ${path}`;
        assert.ok(op.summary, `${where}: summary`);
        const responses = Object.entries(op.responses ?? {});
        const ok = responses.filter(([status]) => status.startsWith('2'));
        assert.ok(ok.length > 0 && ok.every(([, r]) => r.content?.['application/json']?.schema), `${where}: a 2xx answer with a schema`);
        const errors = responses.filter(([status]) => /^[45]/.test(status));
        assert.ok(errors.length > 0, `${where}: errors`);
        for (const [status, r] of errors) {
          assert.deepEqual(r.content?.['application/json']?.schema, { $ref: '#/components/schemas/Error' }, `${where} ${status}`);
        }
      }
    }
    // The errors a key can get are on every /v1 route.
    for (const [path, ops] of Object.entries(doc.paths).filter(([p]) => p.startsWith('/v1/'))) {
      for (const op of Object.values(ops)) assert.ok(op.responses?.['401'], `${path}: 401`);
    }
    assert.ok(doc.paths['/v1/chat/completions']?.post?.responses?.['402'], 'chat completions: 402');
  });

  test('the docs page serves it', async () => {
    const page = await fetch(`${h.url}/docs`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /text\/html/);
    const json = (await (await fetch(`${h.url}/docs/json`)).json()) as Document;
    assert.deepEqual(Object.keys(json.paths).sort(), Object.keys(doc.paths).sort());
  });
});
