import type { AuthContext } from '../keys/verify.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the /v1 authentication hook; null outside /v1. */
    auth: AuthContext | null;
  }
}
