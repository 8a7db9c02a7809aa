// Who is signed in to the dashboard. The dashboard API is authenticated by the session cookie
// only; an API key is never accepted there (and a session never works on /v1).
import type { FastifyRequest } from 'fastify';
import { ApiError } from '../errors.ts';
import { balanceCents, type PublicAccount } from './account-store.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The signed-in account on /dashboard/api routes; null when nobody is signed in. */
    account: PublicAccount | null;
  }
}

export function requireAccount(request: FastifyRequest): PublicAccount {
  if (!request.account) throw new ApiError('not_signed_in');
  return request.account;
}

export function requireAdmin(request: FastifyRequest): PublicAccount {
  const account = requireAccount(request);
  if (account.role !== 'admin') throw new ApiError('admin_only');
  return account;
}

export const accountView = (a: PublicAccount) => ({
  id: a.id,
  email: a.email,
  name: a.name,
  role: a.role,
  ...balanceCents(a),
  created_at: a.created_at,
});
