// The /v1 surface: every route here is authenticated by API key before its body is parsed, so a
// caller without a valid key learns nothing else about the request (OpenAI's order).
import cors from '@fastify/cors';
import type { FastifyInstance } from 'fastify';
import type { Deps } from '../deps.ts';
import { authenticate } from '../keys/verify.ts';
import { showRateLimits } from './admission.ts';
import { chatPipeline, registerChatCompletions } from './chat-completions.ts';
import { registerEmbeddings } from './embeddings.ts';
import { registerInfoRoutes } from './info-routes.ts';
import { registerResponses } from './responses.ts';

export async function v1Plugin(app: FastifyInstance, opts: { deps: Deps }): Promise<void> {
  const { deps } = opts;
  // The API speaks JSON only; anything else is a 415 rather than a confusing schema error.
  app.removeContentTypeParser('text/plain');
  const origins = deps.config.corsOrigins;
  if (origins === '*' || origins.length) {
    // Browser clients (the SDKs' dangerouslyAllowBrowser) with an API key. Registered before the
    // key check, so a preflight (which carries no key) is answered; never with credentials, so no
    // page can spend a signed-in user's cookies here. The request's headers are allowed as asked
    // (the SDKs send their own x-stainless-* ones).
    await app.register(cors, {
      origin: origins === '*' ? '*' : [...origins],
      credentials: false,
      methods: ['GET', 'POST', 'DELETE'],
      exposedHeaders: ['x-request-id', 'retry-after'],
      maxAge: 600,
      strictPreflight: false,
    });
  }
  app.addHook('onRequest', async (request, reply) => {
    request.auth = await authenticate(deps.findKey, request.headers, deps.clock.now());
    deps.lastUsed.touch(request.auth.key.id, deps.clock.now());
    // Every answer to a key with rate limits says where it stands (a model call, once admitted, says it again).
    if (request.auth.key.rpm !== null || request.auth.key.tpm !== null) await showRateLimits(deps, reply, request.auth.key);
  });
  const serveChat = chatPipeline(deps);
  registerChatCompletions(app, serveChat);
  registerResponses(app, serveChat);
  registerEmbeddings(app, deps);
  registerInfoRoutes(app, deps);
}
