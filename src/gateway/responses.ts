// POST /v1/responses: OpenAI's Responses API, for every model, made into a chat request
// (responses-translate.ts) and served by the same steps as chat completions (held first, billed
// at what was produced), then answered as a Response object or as the Responses API's events
// (responses-stream.ts); or, for a model whose upstream serves it, passed on to that upstream
// by the same steps (responses-passthrough.ts).
import type { FastifyInstance } from 'fastify';
import type { Static } from 'typebox';
import { errorResponses, passThrough, typed } from '../http/openapi.ts';
import { type AnswerFormat, type ChatPipeline, type Exchange, overChat } from './chat-completions.ts';
import { MODEL_CALL_ERRORS } from './model-route.ts';
import { passthrough } from './responses-passthrough.ts';
import { responsesEvents } from './responses-stream.ts';
import {
  outputOf,
  type ResponsesRequest,
  responseIdFor,
  responseObject,
  responseUsage,
  statusOf,
  toChatRequest,
} from './responses-translate.ts';
import { ResponseSchema, ResponsesBody } from './schemas.ts';

const SCHEMA = {
  tags: ['API'],
  security: [{ apiKey: [] }],
  summary: 'Create a model response (the Responses API; JSON, or server-sent events with `stream: true`)',
  description:
    'Served over chat completions by every backend: instructions, input items (messages, function_call, function_call_output), function tools, tool_choice, text.format (json_object, json_schema), max_output_tokens; passed on as sent to a model whose upstream serves the Responses API (built-in tools, reasoning). Held and billed as a chat completion. Responses are not stored: `store: true` and `previous_response_id` are a 400.',
  body: ResponsesBody,
  response: {
    200: ResponseSchema,
    ...errorResponses(...MODEL_CALL_ERRORS),
  },
};

export function registerResponses(app: FastifyInstance, serve: ChatPipeline): void {
  typed(app).post('/responses', { schema: SCHEMA, ...passThrough }, async (request, reply) => {
    const body: Static<typeof ResponsesBody> & ResponsesRequest = request.body;
    return serve(
      request,
      reply,
      body.model,
      (route): Exchange<unknown, unknown> =>
        // A sandbox key's route is the simulator's, which is served by translation.
        route.model.responses_api && route.backend.responses
          ? passthrough(route, body, request.id)
          : overChat(route, toChatRequest(body), responses(request.id, body)),
    );
  });
}

function responses(requestId: string, body: ResponsesRequest): AnswerFormat {
  return {
    json: (answer, usage) =>
      responseObject(responseIdFor(requestId), body, answer.created, {
        ...statusOf(answer.choices[0]?.finish_reason ?? null),
        output: outputOf(answer, requestId),
        usage: responseUsage(usage),
      }),
    stream: () => responsesEvents(requestId, body),
    params: { output: 'max_output_tokens', prompt: 'input' },
  };
}
