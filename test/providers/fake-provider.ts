import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A local HTTP server that speaks a provider's real wire protocol — Anthropic Messages
 * (POST /v1/messages) or OpenAI Chat Completions (POST /v1/chat/completions), streamed
 * as server-sent events or not, with tool calls — and answers from a script. Tests point
 * the real client at it; nothing of our own client is mocked.
 */

export type Turn =
  | {
      text?: string;
      toolCalls?: { name: string; input: unknown }[];
      usage?: { input: number; output: number };
    }
  | { status: number; errorType: string; message: string; headers?: Record<string, string> };

export interface ReceivedRequest {
  path: string;
  headers: IncomingMessage["headers"];
  body: Record<string, unknown>;
}

export interface FakeProvider {
  /** The base URL to give the client (ends in /v1). */
  baseUrl: string;
  requests: ReceivedRequest[];
  close: () => Promise<void>;
}

export type Dialect = "anthropic" | "openai";

export async function startFakeProvider(
  dialect: Dialect,
  script: Turn[] | ((request: ReceivedRequest, index: number) => Turn),
  options: { key?: string } = {},
): Promise<FakeProvider> {
  const requests: ReceivedRequest[] = [];
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}") as Record<
      string,
      unknown
    >;
    const received: ReceivedRequest = { path: req.url ?? "", headers: req.headers, body };
    // The model list, which a client reads to check the API and the key: not a model call.
    if (req.method === "GET" && received.path === "/v1/models")
      return models(res, dialect, req, options.key);
    requests.push(received);
    const expected = dialect === "anthropic" ? "/v1/messages" : "/v1/chat/completions";
    if (req.method !== "POST" || received.path !== expected)
      return error(res, dialect, 404, "not_found_error", `no route ${req.method} ${received.path}`);
    const key =
      dialect === "anthropic"
        ? req.headers["x-api-key"]
        : req.headers.authorization?.replace(/^Bearer /, "");
    if (options.key !== undefined && key !== options.key)
      return error(res, dialect, 401, "authentication_error", "invalid x-api-key");
    const index = requests.length - 1;
    const turn = typeof script === "function" ? script(received, index) : script[index];
    if (!turn) return error(res, dialect, 500, "api_error", `the script has no turn ${index}`);
    if ("status" in turn)
      return error(res, dialect, turn.status, turn.errorType, turn.message, turn.headers);
    if (dialect === "anthropic") anthropic(res, turn, body.stream === true, String(body.model));
    else openai(res, turn, body.stream === true, String(body.model));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

type Answer = Exclude<Turn, { status: number }>;

function error(
  res: ServerResponse,
  dialect: Dialect,
  status: number,
  type: string,
  message: string,
  headers: Record<string, string> = {},
) {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(
    JSON.stringify(
      dialect === "anthropic"
        ? { type: "error", error: { type, message } }
        : { error: { message, type, param: null, code: type } },
    ),
  );
}

function sse(res: ServerResponse) {
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
}

function anthropic(res: ServerResponse, turn: Answer, stream: boolean, model: string) {
  const usage = turn.usage ?? { input: 1000, output: 100 };
  const blocks: Record<string, unknown>[] = [];
  if (turn.text) blocks.push({ type: "text", text: turn.text });
  for (const [i, call] of (turn.toolCalls ?? []).entries())
    blocks.push({
      type: "tool_use",
      id: `toolu_${Date.now()}_${i}`,
      name: call.name,
      input: call.input,
    });
  const stopReason = turn.toolCalls?.length ? "tool_use" : "end_turn";
  const id = `msg_${Date.now()}`;
  if (!stream) {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(
      JSON.stringify({
        id,
        type: "message",
        role: "assistant",
        model,
        content: blocks,
        stop_reason: stopReason,
        stop_sequence: null,
        usage: { input_tokens: usage.input, output_tokens: usage.output },
      }),
    );
    return;
  }
  sse(res);
  const send = (event: string, data: unknown) =>
    res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  send("message_start", {
    type: "message_start",
    message: {
      id,
      type: "message",
      role: "assistant",
      model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: { input_tokens: usage.input, output_tokens: 1 },
    },
  });
  send("ping", { type: "ping" });
  blocks.forEach((block, index) => {
    if (block.type === "text") {
      send("content_block_start", {
        type: "content_block_start",
        index,
        content_block: { type: "text", text: "" },
      });
      const text = String(block.text);
      for (let i = 0; i < text.length; i += 16)
        send("content_block_delta", {
          type: "content_block_delta",
          index,
          delta: { type: "text_delta", text: text.slice(i, i + 16) },
        });
    } else {
      send("content_block_start", {
        type: "content_block_start",
        index,
        content_block: { type: "tool_use", id: block.id, name: block.name, input: {} },
      });
      const json = JSON.stringify(block.input);
      for (let i = 0; i < json.length; i += 20)
        send("content_block_delta", {
          type: "content_block_delta",
          index,
          delta: { type: "input_json_delta", partial_json: json.slice(i, i + 20) },
        });
    }
    send("content_block_stop", { type: "content_block_stop", index });
  });
  send("message_delta", {
    type: "message_delta",
    delta: { stop_reason: stopReason, stop_sequence: null },
    usage: { output_tokens: usage.output },
  });
  send("message_stop", { type: "message_stop" });
  res.end();
}

function openai(res: ServerResponse, turn: Answer, stream: boolean, model: string) {
  const usage = turn.usage ?? { input: 1000, output: 100 };
  const calls = (turn.toolCalls ?? []).map((c, i) => ({
    id: `call_${Date.now()}_${i}`,
    type: "function",
    function: { name: c.name, arguments: JSON.stringify(c.input) },
  }));
  const finish = calls.length ? "tool_calls" : "stop";
  const id = `chatcmpl-${Date.now()}`;
  const created = Math.floor(Date.now() / 1000);
  const usageBody = {
    prompt_tokens: usage.input,
    completion_tokens: usage.output,
    total_tokens: usage.input + usage.output,
  };
  if (!stream) {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(
      JSON.stringify({
        id,
        object: "chat.completion",
        created,
        model,
        choices: [
          {
            index: 0,
            message: {
              role: "assistant",
              content: turn.text ?? null,
              ...(calls.length ? { tool_calls: calls } : {}),
            },
            finish_reason: finish,
          },
        ],
        usage: usageBody,
      }),
    );
    return;
  }
  sse(res);
  const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) =>
    res.write(
      `data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model, choices, ...extra })}\n\n`,
    );
  chunk([{ index: 0, delta: { role: "assistant", content: "" }, finish_reason: null }]);
  const text = turn.text ?? "";
  for (let i = 0; i < text.length; i += 16)
    chunk([{ index: 0, delta: { content: text.slice(i, i + 16) }, finish_reason: null }]);
  calls.forEach((call, index) => {
    chunk([
      {
        index: 0,
        delta: {
          tool_calls: [
            {
              index,
              id: call.id,
              type: "function",
              function: { name: call.function.name, arguments: "" },
            },
          ],
        },
        finish_reason: null,
      },
    ]);
    const args = call.function.arguments;
    for (let i = 0; i < args.length; i += 20)
      chunk([
        {
          index: 0,
          delta: { tool_calls: [{ index, function: { arguments: args.slice(i, i + 20) } }] },
          finish_reason: null,
        },
      ]);
  });
  chunk([{ index: 0, delta: {}, finish_reason: finish }]);
  chunk([], { usage: usageBody });
  res.write("data: [DONE]\n\n");
  res.end();
}

function models(
  res: ServerResponse,
  dialect: Dialect,
  req: { headers: Record<string, string | string[] | undefined> },
  expectedKey: string | undefined,
): void {
  const key =
    dialect === "anthropic"
      ? req.headers["x-api-key"]
      : String(req.headers.authorization ?? "").replace(/^Bearer /, "");
  if (expectedKey !== undefined && key !== expectedKey) {
    error(res, dialect, 401, "authentication_error", "invalid x-api-key");
    return;
  }
  res.writeHead(200, { "content-type": "application/json" });
  res.end(JSON.stringify({ data: [{ id: "fake-model", type: "model" }] }));
}
