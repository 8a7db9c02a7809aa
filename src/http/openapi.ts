// The HTTP surface described once: every route's request and response schemas are TypeBox
// schemas (they validate, type the handlers through the type provider, serialise 2xx answers
// with fast-json-stringify, and type the dashboard), and @fastify/swagger turns them into the
// OpenAPI 3.1 document served at GET /openapi.json, browsable at /docs.

import { AjvCompiler } from '@fastify/ajv-compiler';
import { SerializerSelector } from '@fastify/fast-json-stringify-compiler';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { CATALOGUE, type ErrorCode } from '../errors.ts';
import { Nullable } from './schema-parts.ts';

/** The app with request and reply types inferred from the route schemas. */
export const typed = (app: FastifyInstance) => app.withTypeProvider<TypeBoxTypeProvider>();

/** Every error body (errors.ts writes them; the OpenAI SDKs read `error.message`, `type`, `code`). */
export const ErrorBody = Type.Object(
  {
    error: Type.Object(
      {
        message: Type.String(),
        type: Type.String(),
        param: Type.Optional(Nullable(Type.String())),
        code: Type.Optional(Nullable(Type.String())),
        details: Type.Optional(Type.Object({}, { additionalProperties: true })),
      },
      { additionalProperties: true },
    ),
  },
  { $id: 'Error', title: 'Error' },
);

/**
 * The error answers a route can give, by catalogue code, as OpenAPI responses: one per status,
 * listing the codes. Every route also answers the errors any request can get (bad framing,
 * 413, 503 while shedding load or shutting down, 500).
 */
export function errorResponses(...codes: ErrorCode[]): Record<string, unknown> {
  const byStatus = new Map<number, string[]>();
  for (const code of [...codes, ...ANY_REQUEST]) {
    const { status } = CATALOGUE[code];
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  return Object.fromEntries(
    [...byStatus].map(([status, list]) => [status, { ...Type.Ref('Error'), description: [...new Set(list)].join(', ') }]),
  );
}
const ANY_REQUEST: ErrorCode[] = ['malformed_request', 'body_too_large', 'service_unavailable', 'internal_error'];

/** Bodies passed on as the backend sent them (with our fields set): documented, serialised as they are. */
export const passThrough = { serializerCompiler: () => (data: unknown) => JSON.stringify(data) };

type Serialize = (data: unknown) => string;
type RouteSchema = { httpStatus?: string | number; schema: unknown; method: string; url: string };

// Each app compiles every route's schemas (most of the time an app takes to start). The schemas
// are this module's constants, so a process that builds many apps (a test worker builds one per
// suite) compiles each once: validators through one shared Ajv compiler (its pool is keyed by the
// shared schemas and options, and Ajv caches what it compiled by the schema object), serializers
// by the schema object under the same key.
const validators = AjvCompiler();
const serializerCache = new Map<string, WeakMap<object, Serialize>>();

/**
 * Fastify's compiler factories (its schemaController option). Validators: Fastify's own, shared.
 * Serializers: 2xx answers go through fast-json-stringify (faster, and nothing outside the schema
 * can leak out); error bodies are written by JSON.stringify exactly as errors.ts builds them.
 */
export const schemaCompilers = {
  buildValidator: validators,
  buildSerializer(externalSchemas: unknown, options: unknown) {
    const fast = SerializerSelector()(externalSchemas as never, options as never) as (route: RouteSchema) => Serialize;
    const key = JSON.stringify([externalSchemas, options]);
    let compiled = serializerCache.get(key);
    if (!compiled) {
      compiled = new WeakMap();
      serializerCache.set(key, compiled);
    }
    const cache = compiled;
    return (route: RouteSchema): Serialize => {
      if (/^[45]/.test(String(route.httpStatus))) return (data: unknown) => JSON.stringify(data);
      const { schema } = route;
      if (typeof schema !== 'object' || schema === null) return fast(route);
      let serialize = cache.get(schema);
      if (!serialize) {
        serialize = fast(route);
        cache.set(schema, serialize);
      }
      return serialize;
    };
  },
};

/** /openapi.json and the docs page (Swagger UI at /docs), from the routes registered after this. */
export async function registerOpenApi(app: FastifyInstance, info: { version: string }): Promise<void> {
  app.addSchema(ErrorBody);
  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Bizora Integration API',
        version: info.version,
        description:
          'OpenAI-compatible API (`/v1`, authenticated by an `sk_live_…` or `sk_test_…` key) and the developer dashboard API (`/dashboard/api`, authenticated by the session cookie and a CSRF token).',
      },
      components: {
        securitySchemes: {
          apiKey: { type: 'http', scheme: 'bearer', description: 'Authorization: Bearer sk_live_… (or the X-Api-Key header)' },
          adminKey: {
            type: 'http',
            scheme: 'bearer',
            description: 'Authorization: Bearer sk_admin_… (bizora admin-keys create): the management API only',
          },
          session: { type: 'apiKey', in: 'cookie', name: 'bizora_session' },
        },
      },
    },
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`) },
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs', staticCSP: true });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}
