// A value that validates against a JSON schema, made up deterministically: what the simulator
// answers for structured outputs (response_format json_schema) and tool-call arguments. It covers
// what OpenAI's structured outputs accept and what zod and the SDKs generate: types (also as
// lists with "null"), properties and required, items and prefixItems, enum and const, anyOf /
// oneOf / allOf, $ref into $defs or definitions, string formats and lengths, number bounds.
// Bounded: at most MAX_NODES schema nodes are visited (allOf's parts among them), MAX_DEPTH levels
// descended and MAX_CHARS characters of values made, whatever the schema (a recursive $ref ends
// in null where the schema allows it, else in an empty value); each node's $ref is resolved and
// each const measured once, however often it is visited. Linear in the schema.

const MAX_NODES = 2_000;
const MAX_DEPTH = 12;
const MAX_CHARS = 64 * 1024;

export type SampleSource = {
  /** Text to draw strings from (the answer the simulator would have written). */
  text: string;
  /** A word the request is about (a capitalised word of the prompt), for fields like a city. */
  subject: string | undefined;
  /** Makes ids (uuid) differ between answers. */
  hash: number;
};

const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);

export function sampleJson(schema: unknown, source: SampleSource): unknown {
  let visited = 0;
  let chars = 0;
  const root = isObject(schema) ? schema : {};
  const resolved = new WeakMap<object, Record<string, unknown>>();
  const sizes = new WeakMap<object, number>();
  const spent = () => visited > MAX_NODES || chars > MAX_CHARS;

  function resolve(s: Record<string, unknown>): Record<string, unknown> {
    const ref = s.$ref;
    if (typeof ref !== 'string' || !ref.startsWith('#/')) return s;
    const known = resolved.get(s);
    if (known) return known;
    let target: unknown = root;
    for (const part of ref.slice(2).split('/'))
      target = isObject(target) ? target[part.replace(/~1/g, '/').replace(/~0/g, '~')] : undefined;
    const out = isObject(target) ? { ...target, ...Object.fromEntries(Object.entries(s).filter(([k]) => k !== '$ref')) } : {};
    resolved.set(s, out);
    return out;
  }

  /** A fixed value (const, enum), if the characters it adds are still within MAX_CHARS. */
  function fixed(s: Record<string, unknown>, v: unknown): unknown {
    let size = sizes.get(s);
    if (size === undefined) {
      size = JSON.stringify(v)?.length ?? 0;
      sizes.set(s, size);
    }
    chars += size;
    return chars > MAX_CHARS ? null : v;
  }

  function typeOf(s: Record<string, unknown>): string | undefined {
    const t = s.type;
    if (typeof t === 'string') return t;
    if (Array.isArray(t)) return (t.find((x) => x !== 'null') as string | undefined) ?? (t.includes('null') ? 'null' : undefined);
    if (isObject(s.properties)) return 'object';
    if (s.items !== undefined || Array.isArray(s.prefixItems)) return 'array';
    return undefined;
  }

  function allowsNull(s: Record<string, unknown>): boolean {
    if (s.type === 'null' || (Array.isArray(s.type) && s.type.includes('null'))) return true;
    const alternatives = (s.anyOf ?? s.oneOf) as unknown;
    return Array.isArray(alternatives) && alternatives.some((a) => isObject(a) && a.type === 'null');
  }

  function value(schemaNode: unknown, name: string, depth: number): unknown {
    ++visited;
    chars += 4;
    if (spent() || schemaNode === false) return null;
    if (!isObject(schemaNode)) return text(name, {});
    const s = resolve(schemaNode);
    if (depth > MAX_DEPTH) return allowsNull(s) ? null : emptyOf(typeOf(s));
    if ('const' in s) return fixed(s, s.const);
    if (Array.isArray(s.enum) && s.enum.length) return fixed(s, s.enum[0]);
    const alternatives = (s.anyOf ?? s.oneOf) as unknown;
    if (Array.isArray(alternatives) && alternatives.length) {
      const pick = alternatives.find((a) => !(isObject(a) && a.type === 'null')) ?? alternatives[0];
      return value(pick, name, depth + 1);
    }
    if (Array.isArray(s.allOf) && s.allOf.length) {
      // The parts' object properties together (what allOf of objects means in practice).
      const merged: Record<string, unknown> = {};
      const properties: Record<string, unknown> = {};
      for (const part of s.allOf) {
        if (++visited > MAX_NODES) break;
        if (!isObject(part)) continue;
        const p = resolve(part);
        if (isObject(p.properties)) Object.assign(properties, p.properties);
        else Object.assign(merged, p);
      }
      if (Object.keys(properties).length) merged.properties = properties;
      return value({ ...s, ...merged, allOf: undefined }, name, depth + 1);
    }
    switch (typeOf(s)) {
      case 'object':
        return object(s, depth);
      case 'array':
        return array(s, name, depth);
      case 'integer':
        return number(s, true);
      case 'number':
        return number(s, false);
      case 'boolean':
        return true;
      case 'null':
        return null;
      default:
        return text(name, s);
    }
  }

  function object(s: Record<string, unknown>, depth: number): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    const properties = isObject(s.properties) ? s.properties : {};
    // Every listed property: structured outputs require them all, and listed ones are always allowed.
    for (const [k, v] of Object.entries(properties)) {
      if (spent()) break;
      chars += k.length;
      out[k] = value(v, k, depth + 1);
    }
    return out;
  }

  function array(s: Record<string, unknown>, name: string, depth: number): unknown[] {
    const prefix = Array.isArray(s.prefixItems) ? s.prefixItems : [];
    const min = typeof s.minItems === 'number' ? s.minItems : 0;
    const max = typeof s.maxItems === 'number' ? s.maxItems : Number.POSITIVE_INFINITY;
    // One item or the prefix, within the bounds; past half the depth only the items required, so
    // that a recursive schema ends where it may.
    const wanted = depth >= MAX_DEPTH / 2 ? min : Math.max(min, prefix.length, 1);
    const n = Math.min(wanted, max, Math.max(16, Math.min(min, 256)));
    const out: unknown[] = [];
    for (let i = 0; i < n && !spent(); i++) out.push(value(i < prefix.length ? prefix[i] : (s.items ?? {}), name, depth + 1));
    return out;
  }

  function number(s: Record<string, unknown>, integer: boolean): number {
    const num = (k: string) => (typeof s[k] === 'number' ? (s[k] as number) : undefined);
    const exclusiveMin = num('exclusiveMinimum');
    const exclusiveMax = num('exclusiveMaximum');
    const lo = num('minimum') ?? (exclusiveMin !== undefined ? exclusiveMin + (integer ? 1 : 0.5) : undefined);
    const hi = num('maximum') ?? (exclusiveMax !== undefined ? exclusiveMax - (integer ? 1 : 0.5) : undefined);
    let v = lo ?? (hi !== undefined ? Math.min(hi, 42) : 42);
    if (hi !== undefined && v > hi) v = hi;
    if (integer) v = lo !== undefined ? Math.ceil(v) : Math.floor(v);
    const step = num('multipleOf');
    if (step && step > 0) {
      v = Math.ceil(v / step) * step;
      if (hi !== undefined && v > hi) v -= step;
    }
    return v;
  }

  function text(name: string, s: Record<string, unknown>): string {
    const format = typeof s.format === 'string' ? s.format : undefined;
    let out: string;
    if (format === 'date-time') out = '2026-01-01T00:00:00Z';
    else if (format === 'date') out = '2026-01-01';
    else if (format === 'time') out = '00:00:00Z';
    else if (format === 'email') out = 'user@example.com';
    else if (format === 'uri' || format === 'url') out = 'https://example.com/';
    else if (format === 'uuid') out = uuidOf(source.hash);
    else if (source.subject && /city|location|place|country|name|query|topic|subject|title|term/i.test(name)) out = source.subject;
    else out = source.text.slice(0, 80) || 'example';
    const min = typeof s.minLength === 'number' ? s.minLength : 0;
    const max = typeof s.maxLength === 'number' ? s.maxLength : undefined;
    if (out.length < min) out = out.padEnd(Math.min(min, 10_000), '.');
    if (max !== undefined && [...out].length > max) out = [...out].slice(0, max).join('');
    chars += out.length;
    return out;
  }

  return value(root, '', 0);
}

function emptyOf(type: string | undefined): unknown {
  if (type === 'object') return {};
  if (type === 'array') return [];
  if (type === 'integer' || type === 'number') return 0;
  if (type === 'boolean') return false;
  if (type === 'null') return null;
  return '';
}

function uuidOf(h: number): string {
  const hex = (h >>> 0).toString(16).padStart(8, '0');
  return `${hex}-0000-4000-8000-${hex}0000`;
}
