// A chat stream relayed as the Responses API's events: response.created and .in_progress, then
// for each output item its .output_item.added, the text (.content_part.added,
// .output_text.delta…, .output_text.done, .content_part.done) or the call's arguments
// (.function_call_arguments.delta…, .done), its .output_item.done; finally response.completed
// (or .incomplete) with the usage and our cost, or an `error` event and response.failed. Every
// event carries its sequence_number. The relay (chat-stream.ts) keeps the deadlines and the bill.
import type { ChatChunk } from '../backends/backend.ts';
import type { ApiError } from '../errors.ts';
import type { StreamEncoder } from './chat-stream.ts';
import {
  functionCallItem,
  messageItem,
  type OutputItem,
  type ResponsesRequest,
  responseIdFor,
  responseObject,
  responseUsage,
  statusOf,
} from './responses-translate.ts';
import type { SseWriter } from './sse.ts';

type Open = { kind: 'text'; item: OutputItem; text: string } | { kind: 'call'; item: OutputItem; index: number; args: string };

export function responsesEvents(requestId: string, body: ResponsesRequest): StreamEncoder {
  const id = responseIdFor(requestId);
  const suffix = requestId.slice('req_'.length);
  const output: OutputItem[] = [];
  let seq = 0;
  let started = false;
  let created = Math.floor(Date.now() / 1000);
  let open: Open | undefined;
  let last: Promise<void> | undefined;

  const emit = (sse: SseWriter, type: string, data: Record<string, unknown>) => {
    last = sse.send({ type, sequence_number: seq++, ...data }, type) ?? last;
  };
  const snapshot = (
    status: string,
    extra: { incomplete_details?: unknown; error?: unknown; usage?: ReturnType<typeof responseUsage> } = {},
  ) => responseObject(id, body, created, { status, output, usage: extra.usage ?? null, ...extra });

  function start(sse: SseWriter) {
    started = true;
    emit(sse, 'response.created', { response: snapshot('in_progress') });
    emit(sse, 'response.in_progress', { response: snapshot('in_progress') });
  }

  function close(sse: SseWriter) {
    if (!open) return;
    const output_index = output.length;
    if (open.kind === 'text') {
      const base = { item_id: open.item.id, output_index, content_index: 0 };
      emit(sse, 'response.output_text.done', { ...base, text: open.text, logprobs: [] });
      emit(sse, 'response.content_part.done', { ...base, part: { type: 'output_text', text: open.text, annotations: [] } });
      const done = messageItem(open.item.id, open.text, 'completed');
      emit(sse, 'response.output_item.done', { output_index, item: done });
      output.push(done);
    } else {
      const name = String(open.item.name);
      emit(sse, 'response.function_call_arguments.done', { item_id: open.item.id, output_index, name, arguments: open.args });
      const done = functionCallItem(open.item.id, String(open.item.call_id), name, open.args, 'completed');
      emit(sse, 'response.output_item.done', { output_index, item: done });
      output.push(done);
    }
    open = undefined;
  }

  function text(sse: SseWriter, delta: string) {
    if (open?.kind !== 'text') {
      close(sse);
      const item = messageItem(`msg_${suffix}_${output.length}`, '', 'in_progress');
      item.content = [];
      open = { kind: 'text', item, text: '' };
      emit(sse, 'response.output_item.added', { output_index: output.length, item });
      emit(sse, 'response.content_part.added', {
        item_id: item.id,
        output_index: output.length,
        content_index: 0,
        part: { type: 'output_text', text: '', annotations: [] },
      });
    }
    if (!delta) return;
    open.text += delta;
    emit(sse, 'response.output_text.delta', { item_id: open.item.id, output_index: output.length, content_index: 0, delta, logprobs: [] });
  }

  function call(sse: SseWriter, tc: { index?: number; id?: string; function?: { name?: string; arguments?: string } }) {
    const index = tc.index ?? 0;
    if (open?.kind !== 'call' || open.index !== index) {
      close(sse);
      const item = functionCallItem(`fc_${suffix}_${output.length}`, tc.id ?? '', tc.function?.name ?? '', '', 'in_progress');
      open = { kind: 'call', item, index, args: '' };
      emit(sse, 'response.output_item.added', { output_index: output.length, item });
    }
    const piece = tc.function?.arguments;
    if (!piece) return;
    open.args += piece;
    emit(sse, 'response.function_call_arguments.delta', { item_id: open.item.id, output_index: output.length, delta: piece });
  }

  return {
    chunk(sse, chunk: ChatChunk) {
      last = undefined;
      created = chunk.created ?? created;
      if (!started) start(sse);
      // A response has one answer: the first choice's.
      const delta = chunk.choices.find((c) => c.index === 0)?.delta;
      if (!delta) return last;
      if (typeof delta.content === 'string' && delta.content) text(sse, delta.content);
      const calls = delta.tool_calls;
      if (Array.isArray(calls)) for (const tc of calls) call(sse, tc as Parameters<typeof call>[1]);
      return last;
    },
    end(sse, usage, finishReason) {
      last = undefined;
      if (!started) start(sse);
      close(sse);
      const { status, incomplete_details } = statusOf(finishReason);
      emit(sse, `response.${status}`, { response: snapshot(status, { incomplete_details, usage: responseUsage(usage) }) });
      sse.end();
      return last;
    },
    fail(sse, failure: ApiError) {
      last = undefined;
      if (!started) start(sse);
      const error = failure.toBody().error;
      // The SDKs raise an APIError for an event that carries `error`.
      emit(sse, 'error', { code: error.code, message: error.message, param: error.param, error });
      emit(sse, 'response.failed', { response: snapshot('failed', { error: { code: error.code ?? error.type, message: error.message } }) });
      sse.end();
      return last;
    },
  };
}
