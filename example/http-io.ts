import type * as http from "node:http";
import type * as http2 from "node:http2";

/** A request from the HTTP/1.1 or the HTTP/2 server: both reach the same handler. */
export type AnyRequest = http.IncomingMessage | http2.Http2ServerRequest;

/**
 * The part of a response of the HTTP/1.1 or the HTTP/2 server that the demo's
 * own endpoints use. Structural, so that connect-node's response type (which
 * patches `write`) fits as well as Node's own.
 */
export interface AnyResponse {
  readonly headersSent: boolean;
  setHeader(name: string, value: string): unknown;
  writeHead(status: number, headers?: http.OutgoingHttpHeaders): unknown;
  end(): unknown;
  end(chunk: Uint8Array): unknown;
  destroy(): unknown;
}

/**
 * sendJson answers with a JSON body. Every answer of the demo's own endpoints
 * goes through here, {@link sendText} or {@link sendBody}, so each gets `nosniff`.
 */
export function sendJson(
  res: AnyResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  sendBody(res, status, "application/json", `${JSON.stringify(body)}\n`, headers);
}

/** sendText answers with a UTF-8 plain-text body. */
export function sendText(
  res: AnyResponse,
  status: number,
  text: string,
  headers: Record<string, string> = {},
): void {
  sendBody(res, status, "text/plain; charset=utf-8", text, headers);
}

/** sendBody answers with a body of any type; a string is sent as UTF-8. */
export function sendBody(
  res: AnyResponse,
  status: number,
  contentType: string,
  body: string | Uint8Array,
  headers: Record<string, string> = {},
): void {
  const bytes = typeof body === "string" ? Buffer.from(body, "utf8") : body;
  res.writeHead(status, {
    ...headers,
    "content-type": contentType,
    "content-length": String(bytes.byteLength),
    "x-content-type-options": "nosniff",
  });
  res.end(bytes);
}

/**
 * readBody reads a request body of at most `limit` bytes. It resolves to
 * `undefined` as soon as the body is known to be too large (from
 * `Content-Length`, or while counting a chunked body), without reading the
 * rest; the caller answers 413.
 */
export async function readBody(req: AnyRequest, limit: number): Promise<Buffer | undefined> {
  const declared = Number(req.headers["content-length"] ?? 0);
  if (!(declared <= limit)) {
    return undefined;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  // Keep the stream open on an early return: destroying it would also destroy
  // the HTTP/1.1 socket before the 413 answer is written.
  for await (const chunk of req.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
    size += chunk.byteLength;
    if (size > limit) {
      return undefined;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
