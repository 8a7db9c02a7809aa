// What the simulator answers, decided from the request alone (the same request always gets the
// same answer): a text, a JSON document (response_format json_object, or one that validates
// against a json_schema), or a call of one of the offered tools (tool_choice: auto calls the first
// tool the prompt mentions by name or description, required and a named tool always call), cut
// at a stop sequence and at max_tokens, n of them; with logprobs when asked. Every piece of work
// here is bounded: only the start of the conversation's texts is read.
import { countText, firstTokens, o200k } from '../lib/tokens.ts';
import type { ChatMessage, ChatRequest } from './backend.ts';
import { sampleJson } from './json-sample.ts';

const FILLER = [
  'Bizora routes each request to the model backend its operator configured.',
  'Every request is held against the prepaid balance before it reaches a model.',
  'The final answer carries its usage and its cost in cents.',
  'Test keys are answered by this simulator and are never billed.',
  'Streaming answers end with a data: [DONE] line, as OpenAI clients expect.',
  'Revoked keys are refused on their very next request.',
];

/** How much of a text the simulator reads: no work here grows with the size of the prompt. */
const READ_CHARS = 1024;

export function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .slice(0, 64)
      .map((p) => (p && typeof p === 'object' && typeof (p as { text?: unknown }).text === 'string' ? (p as { text: string }).text : ''))
      .join(' ');
  }
  return '';
}

export function lastUserText(messages: readonly ChatMessage[]): string {
  for (let i = messages.length - 1; i >= 0; i--) if (messages[i]?.role === 'user') return textOf(messages[i]?.content);
  return textOf(messages.at(-1)?.content);
}

/** FNV-1a: a small, stable hash so the same request always picks the same answer. */
export function fnv1a(s: string, h = 0x811c9dc5): number {
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/**
 * The hash of a conversation: each message's role, length and first 1,024 characters of text.
 * Bounded: hashing a whole 7 MiB prompt (and serialising it first) held the event loop ~60 ms.
 */
export function conversationHash(messages: readonly ChatMessage[]): number {
  let h = fnv1a(String(messages.length));
  for (const m of messages.slice(-64)) {
    const text = textOf(m.content);
    h = fnv1a(`${m.role}:${text.length}:${text.slice(0, READ_CHARS)}`, h);
  }
  return h;
}

export type ToolCall = { id: string; type: 'function'; function: { name: string; arguments: string } };
export type LogprobToken = { token: string; logprob: number; bytes: number[]; top_logprobs: Omit<LogprobToken, 'top_logprobs'>[] };

export type SimulatedChoice = {
  /** The text, or null for a tool call. */
  content: string | null;
  toolCalls: ToolCall[] | undefined;
  finishReason: 'stop' | 'length' | 'tool_calls';
  /** The tokens the model produced (text, or the call's name and arguments). */
  tokens: number;
  /** Per token of content, when the request asked for logprobs. */
  logprobs: LogprobToken[] | undefined;
};

type Tool = { name: string; description: string; parameters: unknown };

function offeredTools(request: ChatRequest): Tool[] {
  const tools = Array.isArray(request.tools) ? (request.tools as unknown[]).slice(0, 128) : [];
  const out: Tool[] = [];
  for (const t of tools) {
    const fn = t && typeof t === 'object' ? (t as { type?: unknown; function?: Record<string, unknown> }).function : undefined;
    if (!fn || typeof fn.name !== 'string') continue;
    out.push({ name: fn.name, description: typeof fn.description === 'string' ? fn.description : '', parameters: fn.parameters ?? {} });
  }
  return out;
}

const words = (s: string, min: number) => new Set((s.toLowerCase().match(/[a-z0-9]+/g) ?? []).filter((w) => w.length >= min));

/** The tool to call, if any: per tool_choice, and for auto the first one the prompt mentions. */
function toolToCall(request: ChatRequest, tools: Tool[], said: string): Tool | undefined {
  if (!tools.length) return undefined;
  const choice = request.tool_choice as unknown;
  if (choice === 'none') return undefined;
  if (choice && typeof choice === 'object') {
    const name = (choice as { function?: { name?: unknown }; name?: unknown }).function?.name ?? (choice as { name?: unknown }).name;
    return tools.find((t) => t.name === name) ?? tools[0];
  }
  const prompt = words(said.slice(0, READ_CHARS), 3);
  const mentioned = tools.find((t) => {
    const nameWords = t.name.replace(/([a-z])([A-Z])/g, '$1 $2');
    return (
      [...words(nameWords, 4)].some((w) => prompt.has(w)) || [...words(t.description.slice(0, READ_CHARS), 5)].some((w) => prompt.has(w))
    );
  });
  if (choice === 'required') return mentioned ?? tools[0];
  // auto: once a tool has answered, the model answers in words (an agent loop ends).
  if (request.messages.at(-1)?.role === 'tool') return undefined;
  return mentioned;
}

/** A capitalised word of the prompt other than its first: what a question is about ("Paris"). */
function subjectOf(said: string): string | undefined {
  const caps = said.slice(0, READ_CHARS).match(/(?<=\s)[A-Z][\p{L}-]+/gu);
  return caps?.at(-1);
}

function composeText(request: ChatRequest, h: number, said: string): string {
  const excerpt = said.slice(0, READ_CHARS).replace(/\s+/g, ' ').trim();
  const quoted = excerpt.length > 120 ? `${excerpt.slice(0, 117)}...` : excerpt;
  const last = request.messages.at(-1);
  if (last?.role === 'tool') {
    const result = textOf(last.content).slice(0, 200);
    return `This is the Bizora simulator. The tool answered: ${result}`;
  }
  const extra = [FILLER[h % FILLER.length], FILLER[(h >>> 8) % FILLER.length]].filter((s, i, a) => a.indexOf(s) === i);
  return `This is the Bizora simulator. You said: "${quoted}". ${extra.join(' ')}`;
}

/** The text as response_format asks: plain, a JSON object, or a document of the given schema. */
function formatted(request: ChatRequest, text: string, h: number, subject: string | undefined): string {
  const format = request.response_format;
  if (format?.type === 'json_object') return JSON.stringify({ simulated: true, answer: text });
  if (format?.type === 'json_schema') {
    const schema = (format.json_schema as { schema?: unknown } | undefined)?.schema ?? {};
    return JSON.stringify(sampleJson(schema, { text, subject, hash: h }));
  }
  return text;
}

/** The text up to the first of the stop sequences (at most 4, as OpenAI allows), and whether one was found. */
function cutAtStop(text: string, stop: unknown): { text: string; stopped: boolean } {
  const sequences = (typeof stop === 'string' ? [stop] : Array.isArray(stop) ? stop : []).filter(
    (s): s is string => typeof s === 'string' && s.length > 0,
  );
  let at = -1;
  for (const s of sequences.slice(0, 4)) {
    const i = text.indexOf(s);
    if (i >= 0 && (at < 0 || i < at)) at = i;
  }
  return at < 0 ? { text, stopped: false } : { text: text.slice(0, at), stopped: true };
}

/** Deterministic log probabilities: the token chosen first, then up to `top` alternatives below it. */
export function logprobsOf(tokens: readonly number[], top: number): LogprobToken[] {
  const alternatives = [' the', ' a', ' and', '.', ',', ' of', ' to', ' in', ' is', ' it'];
  return tokens.map((id, i) => {
    const token = o200k.decode([id]);
    const logprob = -((fnv1a(token, i) % 1000) / 1000) - 0.001;
    const entry = (t: string, lp: number) => ({ token: t, logprob: lp, bytes: [...Buffer.from(t)] });
    const tops = [entry(token, logprob), ...alternatives.filter((a) => a !== token).map((a, k) => entry(a, logprob - 1 - k))];
    return { ...entry(token, logprob), top_logprobs: tops.slice(0, top) };
  });
}

/**
 * The most tokens the simulator writes for one request, across its choices (fewer with logprobs,
 * which are some twenty times the answer): a free sandbox key cannot make it build hundreds of
 * megabytes. Each choice gets its share, within the request's own limit.
 */
export const SIMULATED_TOKENS = 16_384;
const SIMULATED_TOKENS_WITH_LOGPROBS = 4_096;

/** The simulator's n answers to a request, each limited to maxTokens tokens (and its share of SIMULATED_TOKENS). */
export function simulateChoices(request: ChatRequest, requestedMax: number | null, hash: number): SimulatedChoice[] {
  const n = typeof request.n === 'number' && request.n > 1 ? Math.min(request.n, 128) : 1;
  const budget = Math.max(1, Math.floor((request.logprobs === true ? SIMULATED_TOKENS_WITH_LOGPROBS : SIMULATED_TOKENS) / n));
  const maxTokens = requestedMax === null ? budget : Math.min(requestedMax, budget);
  const said = lastUserText(request.messages);
  const subject = subjectOf(said);
  const tool = toolToCall(request, offeredTools(request), said);
  const wantLogprobs = request.logprobs === true;
  const top = typeof request.top_logprobs === 'number' ? Math.min(Math.max(request.top_logprobs, 0), 20) : 0;
  const choices: SimulatedChoice[] = [];
  for (let i = 0; i < n; i++) {
    const h = i === 0 ? hash : fnv1a(String(i), hash);
    if (tool) {
      const args = JSON.stringify(sampleJson(tool.parameters, { text: said.slice(0, 80), subject, hash: h }));
      const nameTokens = countText(tool.name);
      const limited = firstTokens(args, maxTokens === null ? null : Math.max(0, maxTokens - nameTokens));
      choices.push({
        content: null,
        toolCalls: [{ id: `call_sim${h.toString(36)}`, type: 'function', function: { name: tool.name, arguments: limited.text } }],
        finishReason: limited.truncated ? 'length' : 'tool_calls',
        tokens: nameTokens + limited.tokens.length,
        logprobs: undefined,
      });
      continue;
    }
    const composed = formatted(request, composeText(request, h, said), h, subject);
    const stopped = cutAtStop(composed, request.stop);
    const limited = firstTokens(stopped.text, maxTokens);
    choices.push({
      content: limited.text,
      toolCalls: undefined,
      finishReason: limited.truncated ? 'length' : 'stop',
      tokens: limited.tokens.length,
      logprobs: wantLogprobs ? logprobsOf(limited.tokens, top) : undefined,
    });
  }
  return choices;
}
