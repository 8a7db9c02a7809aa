// Which methods each registered route answers, so that a wrong method on a known path is a 405
// with an Allow header instead of a 404. Fed by Fastify's onRoute hook; read only on the
// not-found path, so it costs the routes that exist nothing.

type Route = { pattern: RegExp; methods: Set<string> };

const escapeRegExp = (s: string) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&');

/** `/v1/models/:id` -> /^\/v1\/models\/[^/]+$/ (Fastify's `:param` and trailing `*`). */
function patternOf(url: string): RegExp {
  const source = url
    .split('/')
    .map((part) => (part.startsWith(':') ? '[^/]+' : part === '*' ? '.*' : escapeRegExp(part)))
    .join('/');
  return new RegExp(`^${source}$`);
}

export class AllowedMethods {
  private readonly routes = new Map<string, Route>();

  add(method: string | string[], url: string): void {
    let route = this.routes.get(url);
    if (!route) {
      route = { pattern: patternOf(url), methods: new Set() };
      this.routes.set(url, route);
    }
    for (const m of Array.isArray(method) ? method : [method]) route.methods.add(m.toUpperCase());
  }

  /** The methods some route answers at this path (no query string), sorted; empty when none does. */
  at(path: string): string[] {
    const methods = new Set<string>();
    for (const route of this.routes.values()) {
      if (route.pattern.test(path)) for (const m of route.methods) methods.add(m);
    }
    return [...methods].sort();
  }
}
