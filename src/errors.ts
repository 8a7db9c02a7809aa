// The one catalogue of errors the platform can answer with. Every entry fixes the HTTP status,
// the OpenAI `type` the SDKs map to an exception class, and the default message. Routes throw
// (or return) an ApiError by code; the error handler in app.ts is the only place that writes
// error bodies. test/errors.test.ts walks this catalogue.

type Entry = Readonly<{
  status: number;
  type: string;
  message: string;
  /** The OpenAI `code` field; null where the contract fixes it as null. */
  code: string | null;
  /** Whether an SDK retrying the same request could ever help (x-should-retry). */
  retry: boolean;
  /** Headers every answer with this error carries. */
  headers?: Readonly<Record<string, string>>;
}>;

const entry = (status: number, type: string, message: string, code: string | null, retry = false): Entry =>
  Object.freeze({ status, type, message, code, retry });

// API-key failures tell the client how to authenticate (RFC 6750); dashboard sign-in failures do not.
const bearerChallenge = (e: Entry): Entry => Object.freeze({ ...e, headers: { 'www-authenticate': 'Bearer' } });

export const CATALOGUE = Object.freeze({
  invalid_json: entry(400, 'invalid_request_error', 'The request body is not valid JSON.', 'invalid_json'),
  invalid_request: entry(400, 'invalid_request_error', 'The request is invalid.', 'invalid_request'),
  malformed_request: entry(400, 'invalid_request_error', 'The request is not valid HTTP/1.1.', 'malformed_request'),
  json_too_deep: entry(
    400,
    'invalid_request_error',
    'The request body nests arrays and objects more than 64 levels deep.',
    'json_too_deep',
  ),
  invalid_text: entry(
    400,
    'invalid_request_error',
    'A value in the request contains a character that cannot be stored (such as a NUL byte).',
    'invalid_request',
  ),
  missing_api_key: bearerChallenge(
    entry(
      401,
      'authentication_error',
      "Missing API key. Send it as 'Authorization: Bearer sk_live_YOUR_API_KEY' or 'X-Api-Key: sk_live_YOUR_API_KEY'.",
      null,
    ),
  ),
  invalid_api_key: bearerChallenge(entry(401, 'authentication_error', 'Invalid API key', null)),
  conflicting_api_keys: bearerChallenge(
    entry(401, 'authentication_error', 'The Authorization and X-Api-Key headers carry different API keys. Send one key.', null),
  ),
  not_signed_in: entry(401, 'authentication_error', 'Sign in to use the dashboard.', 'not_signed_in'),
  invalid_admin_key: bearerChallenge(
    entry(
      401,
      'authentication_error',
      "Invalid management key. Send 'Authorization: Bearer sk_admin_…' (bizora admin-keys create).",
      'invalid_admin_key',
    ),
  ),
  idempotency_key_required: entry(
    400,
    'invalid_request_error',
    'Send an Idempotency-Key header (a UUID, say) with a credit grant: a retry with the same key grants nothing twice.',
    'idempotency_key_required',
  ),
  invalid_credentials: entry(401, 'authentication_error', 'The email or password is incorrect.', 'invalid_credentials'),
  insufficient_balance: entry(402, 'insufficient_balance', 'Your API balance is insufficient...', 'insufficient_balance'),
  permission_denied: entry(403, 'permission_error', 'This API key may not use this resource.', 'permission_denied'),
  csrf_invalid: entry(
    403,
    'permission_error',
    'The form has expired or did not come from this dashboard. Reload the page and try again.',
    'csrf_invalid',
  ),
  admin_only: entry(403, 'permission_error', 'Only administrators may do this.', 'admin_only'),
  signup_closed: entry(
    403,
    'permission_error',
    'Sign-up is closed on this server. Ask an administrator to create an account for you.',
    'signup_closed',
  ),
  route_not_found: entry(404, 'not_found_error', 'Unknown route.', 'route_not_found'),
  model_not_found: entry(404, 'not_found_error', 'The model does not exist or you do not have access to it.', 'model_not_found'),
  generation_not_found: entry(404, 'not_found_error', 'No generation with this id was made with this account.', 'generation_not_found'),
  key_not_found: entry(404, 'not_found_error', 'No such API key in this account.', 'key_not_found'),
  account_not_found: entry(404, 'not_found_error', 'No such account.', 'account_not_found'),
  method_not_allowed: entry(405, 'invalid_request_error', 'This route does not answer this method.', 'method_not_allowed'),
  // Retrying a request that arrived too slowly can work on a better connection.
  request_timeout: entry(408, 'invalid_request_error', 'The request was not received in time.', 'request_timeout', true),
  email_taken: entry(409, 'conflict_error', 'An account with this email exists already.', 'email_taken'),
  idempotency_key_reused: entry(
    409,
    'conflict_error',
    'This Idempotency-Key was already used for a different request. Use a new key for a new grant.',
    'idempotency_key_reused',
  ),
  body_too_large: entry(413, 'invalid_request_error', 'The request body is larger than this server accepts.', 'body_too_large'),
  uri_too_long: entry(414, 'invalid_request_error', 'The request URL is longer than this server accepts.', 'uri_too_long'),
  unsupported_media_type: entry(
    415,
    'invalid_request_error',
    "Send the body as JSON with 'Content-Type: application/json'.",
    'unsupported_media_type',
  ),
  expectation_failed: entry(417, 'invalid_request_error', "The Expect header can only be '100-continue'.", 'expectation_failed'),
  too_many_attempts: entry(429, 'rate_limit_error', 'Too many failed sign-in attempts. Try again later.', 'too_many_attempts', true),
  rate_limited: entry(
    429,
    'rate_limit_error',
    'Too many requests. Retry after the time in the Retry-After header.',
    'rate_limit_exceeded',
    true,
  ),
  headers_too_large: entry(
    431,
    'invalid_request_error',
    'The request headers are larger than this server accepts (16 KB).',
    'headers_too_large',
  ),
  internal_error: entry(500, 'api_error', 'The server had an error while processing your request.', 'internal_error', true),
  upstream_error: entry(502, 'upstream_error', 'The model backend failed to answer.', 'upstream_error', true),
  service_unavailable: entry(503, 'api_error', 'The service is temporarily unavailable.', 'service_unavailable', true),
  upstream_timeout: entry(504, 'upstream_error', 'The model backend did not answer in time.', 'upstream_timeout', true),
} satisfies Record<string, Entry>);

export type ErrorCode = keyof typeof CATALOGUE;

export type ErrorOptions = {
  message?: string;
  param?: string | null;
  details?: Record<string, unknown>;
  headers?: Record<string, string>;
  /** Overrides the status (used to pass on an upstream 4xx with its own status). */
  status?: number;
  type?: string;
  /** Overrides the body's `code` (used to pass on an upstream error's own code). */
  publicCode?: string | null;
};

/** An expected, client-facing failure. Anything else that is thrown is answered as a bare 500. */
export class ApiError extends Error {
  readonly status: number;
  readonly type: string;
  readonly param: string | null | undefined;
  readonly details: Record<string, unknown> | undefined;
  readonly headers: Record<string, string>;
  readonly publicCode: string | null;

  constructor(
    readonly code: ErrorCode,
    opts: ErrorOptions = {},
  ) {
    const e = CATALOGUE[code];
    super(opts.message ?? e.message);
    this.name = 'ApiError';
    this.status = opts.status ?? e.status;
    this.type = opts.type ?? e.type;
    this.param = opts.param;
    this.details = opts.details;
    this.publicCode = opts.publicCode !== undefined ? opts.publicCode : e.code;
    this.headers = { ...(e.retry ? {} : { 'x-should-retry': 'false' }), ...e.headers, ...opts.headers };
  }

  /** The OpenAI-shaped body. The 401 and 402 shapes are fixed byte-for-byte by the contract. */
  toBody(): { error: Record<string, unknown> } {
    if (this.code === 'insufficient_balance') {
      return { error: { type: this.type, message: this.message, details: this.details ?? {} } };
    }
    const error: Record<string, unknown> = { message: this.message, type: this.type };
    if (this.param !== undefined) error.param = this.param;
    error.code = this.publicCode;
    if (this.details) error.details = this.details;
    return { error };
  }
}
