import * as http2 from "node:http2";
import * as net from "node:net";
import { Duplex } from "node:stream";
import type { Code } from "@connectrpc/connect";
import { codeFromString } from "@connectrpc/connect/protocol-connect";
import type { TransportKind } from "../../helpers/server.js";

// A client that puts exactly the header bytes we choose on the wire, for the
// requests Node's HTTP clients refuse to make: control characters, bytes
// outside ASCII, two `authorization` fields. HTTP/1.1 goes over a plain TCP
// socket; HTTP/2 goes through node:http2 with the request's header block
// swapped, on its way out, for one encoded here (HPACK literals, no Huffman),
// so that node:http2 still does the framing and decodes the answer.

/** One header field as sent: its name, and its value as a string of bytes (latin1) or bytes. */
export type RawField = readonly [name: string, value: string | Uint8Array];

/** A call made with {@link rawCall}: the two call kinds that need no request stream. */
export type RawCallKind = "unary" | "server-streaming";

/** What came back, read the way a Connect client would read it. */
export interface RawAnswer {
  /** The HTTP status; 0 when the connection ended without one. */
  readonly status: number;
  /** The RPC code, `undefined` for success; `null` when the answer is no RPC answer at all (an HTTP 400). */
  readonly code: Code | undefined | null;
  readonly message: string | undefined;
  /** Response headers, trailers and Connect end-of-stream metadata, merged. */
  readonly metadata: Headers;
  /** Everything the server sent (headers, trailers and body as latin1), for leak checks. */
  readonly wire: string;
}

const paths: Record<RawCallKind, string> = {
  unary: "/demo.v1.DemoService/WhoAmI",
  "server-streaming": "/demo.v1.DemoService/ListNotes",
};

// An empty message in the five-byte envelope of gRPC, gRPC-Web and Connect streams.
const emptyFrame = Buffer.from([0, 0, 0, 0, 0]);

function requestShape(protocol: TransportKind["protocol"], kind: RawCallKind) {
  switch (protocol) {
    case "connect":
      return kind === "unary"
        ? { contentType: "application/proto", body: Buffer.alloc(0) }
        : { contentType: "application/connect+proto", body: emptyFrame };
    case "grpc":
      return { contentType: "application/grpc+proto", body: emptyFrame };
    case "grpc-web":
      return { contentType: "application/grpc-web+proto", body: emptyFrame };
  }
}

/**
 * rawCall makes one call of `kind` to the demo service at `baseUrl` over the
 * transport's protocol and HTTP version, with `fields` sent verbatim after the
 * headers the protocol needs.
 */
export async function rawCall(
  baseUrl: string,
  transport: TransportKind,
  kind: RawCallKind,
  fields: readonly RawField[],
): Promise<RawAnswer> {
  const url = new URL(baseUrl);
  const { contentType, body } = requestShape(transport.protocol, kind);
  const protocolFields: RawField[] = [
    ["content-type", contentType],
    ...(transport.protocol === "grpc" ? [["te", "trailers"] as const] : []),
    ...(transport.protocol === "connect" && kind === "unary"
      ? [["connect-protocol-version", "1"] as const]
      : []),
  ];
  const raw =
    transport.httpVersion === "2"
      ? await exchangeH2(url, paths[kind], [...protocolFields, ...fields], body)
      : await exchangeH1(url, paths[kind], [...protocolFields, ...fields], body);
  return interpret(transport.protocol, kind, raw);
}

/** The bytes of an answer, before the protocol reads them. */
interface Exchange {
  status: number;
  headers: [string, string][];
  trailers: [string, string][];
  body: Buffer;
}

function bytesOf(value: string | Uint8Array): Buffer {
  return typeof value === "string" ? Buffer.from(value, "latin1") : Buffer.from(value);
}

// ---- HTTP/1.1 over a socket -------------------------------------------------

function exchangeH1(url: URL, path: string, fields: RawField[], body: Buffer): Promise<Exchange> {
  const head = Buffer.concat([
    Buffer.from(`POST ${path} HTTP/1.1\r\nHost: ${url.host}\r\n`, "latin1"),
    ...fields.map(([name, value]) =>
      Buffer.concat([Buffer.from(`${name}: `, "latin1"), bytesOf(value), Buffer.from("\r\n")]),
    ),
    Buffer.from(`Content-Length: ${body.length}\r\nConnection: close\r\n\r\n`, "latin1"),
  ]);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(url.port), url.hostname);
    const chunks: Buffer[] = [];
    socket.setTimeout(10_000, () => socket.destroy(new Error("raw HTTP/1.1 call timed out")));
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("error", reject);
    // The server may answer and close before it reads the body: a reset then is no failure.
    socket.on("close", () => resolve(parseH1(Buffer.concat(chunks))));
    socket.write(Buffer.concat([head, body]));
  });
}

function parseH1(data: Buffer): Exchange {
  const end = data.indexOf("\r\n\r\n");
  if (end < 0) {
    return { status: 0, headers: [], trailers: [], body: data };
  }
  const [statusLine = "", ...lines] = data.subarray(0, end).toString("latin1").split("\r\n");
  const status = Number(statusLine.split(" ")[1] ?? 0);
  const headers = lines.map((line): [string, string] => {
    const colon = line.indexOf(":");
    return [line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()];
  });
  let body = data.subarray(end + 4);
  const trailers: [string, string][] = [];
  if (headers.some(([n, v]) => n === "transfer-encoding" && v.includes("chunked"))) {
    const parts: Buffer[] = [];
    let at = 0;
    for (;;) {
      const lineEnd = body.indexOf("\r\n", at);
      if (lineEnd < 0) break;
      const size = Number.parseInt(body.subarray(at, lineEnd).toString("latin1"), 16);
      if (!(size > 0)) break;
      parts.push(body.subarray(lineEnd + 2, lineEnd + 2 + size));
      at = lineEnd + 2 + size + 2;
    }
    body = Buffer.concat(parts);
  }
  return { status, headers, trailers, body };
}

// ---- HTTP/2 through node:http2, with the header block replaced ---------------

function exchangeH2(url: URL, path: string, fields: RawField[], body: Buffer): Promise<Exchange> {
  const block = hpackLiterals([
    [":method", "POST"],
    [":scheme", "http"],
    [":authority", url.host],
    [":path", path],
    ...fields,
  ]);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(url.port), url.hostname);
    const session = http2.connect(url.origin, {
      createConnection: () => swapHeaderBlock(socket, block),
    });
    const answer: Exchange = { status: 0, headers: [], trailers: [], body: Buffer.alloc(0) };
    const chunks: Buffer[] = [];
    const finish = () => {
      answer.body = Buffer.concat(chunks);
      session.destroy();
      resolve(answer);
    };
    session.on("error", () => finish());
    // The header block node:http2 builds here never reaches the server.
    const req = session.request({ ":method": "POST", ":path": path });
    req.setTimeout(10_000, () => {
      session.destroy();
      reject(new Error("raw HTTP/2 call timed out"));
    });
    req.on("response", (headers) => {
      answer.status = Number(headers[":status"] ?? 0);
      answer.headers = entriesOf(headers);
    });
    req.on("trailers", (trailers) => {
      answer.trailers = entriesOf(trailers);
    });
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("error", () => {});
    req.on("close", finish);
    req.end(body);
  });
}

function entriesOf(headers: http2.IncomingHttpHeaders): [string, string][] {
  return Object.entries(headers)
    .filter(([name]) => !name.startsWith(":"))
    .flatMap(([name, value]) =>
      (Array.isArray(value) ? value : [value ?? ""]).map((v): [string, string] => [name, v]),
    );
}

/** HPACK: every field a "literal header field without indexing, new name", no Huffman. */
function hpackLiterals(fields: readonly RawField[]): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of fields) {
    const nameBytes = Buffer.from(name, "latin1");
    const valueBytes = bytesOf(value);
    parts.push(Buffer.from([0]), hpackInt(nameBytes.length), nameBytes);
    parts.push(hpackInt(valueBytes.length), valueBytes);
  }
  return Buffer.concat(parts);
}

/** An HPACK string length: a 7-bit prefix integer with the Huffman bit clear. */
function hpackInt(n: number): Buffer {
  if (n < 127) return Buffer.from([n]);
  const bytes = [127];
  let rest = n - 127;
  while (rest >= 128) {
    bytes.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  bytes.push(rest);
  return Buffer.from(bytes);
}

const frameHeaders = 0x1;
const frameContinuation = 0x9;
const flagEndStream = 0x1;
const flagEndHeaders = 0x4;
const maxFramePayload = 16_384;

/**
 * swapHeaderBlock is the connection node:http2 writes to: frames pass through
 * unchanged, except the header block of the (one) request, replaced by `block`.
 */
function swapHeaderBlock(socket: net.Socket, block: Buffer): Duplex {
  let pending = Buffer.alloc(0);
  let prefaceLeft = 24;
  let dropContinuations = false;
  const rewrite = (chunk: Buffer): Buffer => {
    pending = Buffer.concat([pending, chunk]);
    const out: Buffer[] = [];
    if (prefaceLeft > 0) {
      const n = Math.min(prefaceLeft, pending.length);
      out.push(pending.subarray(0, n));
      pending = pending.subarray(n);
      prefaceLeft -= n;
    }
    while (prefaceLeft === 0 && pending.length >= 9) {
      const length = pending.readUIntBE(0, 3);
      if (pending.length < 9 + length) break;
      const type = pending[3] ?? 0;
      const flags = pending[4] ?? 0;
      const stream = pending.readUInt32BE(5) & 0x7fffffff;
      const frame = pending.subarray(0, 9 + length);
      pending = pending.subarray(9 + length);
      if (type === frameHeaders && stream !== 0) {
        out.push(...headerFrames(stream, flags & flagEndStream, block));
        dropContinuations = (flags & flagEndHeaders) === 0;
      } else if (type === frameContinuation && dropContinuations) {
        dropContinuations = (flags & flagEndHeaders) === 0;
      } else {
        out.push(frame);
      }
    }
    return Buffer.concat(out);
  };
  const duplex = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      socket.write(rewrite(chunk), callback);
    },
    final(callback) {
      socket.end(callback);
    },
    destroy(err, callback) {
      socket.destroy();
      callback(err);
    },
  });
  socket.on("data", (chunk) => {
    if (!duplex.push(chunk)) socket.pause();
  });
  socket.on("end", () => duplex.push(null));
  socket.on("error", (err) => duplex.destroy(err));
  socket.on("close", () => duplex.destroy());
  return duplex;
}

function headerFrames(stream: number, endStream: number, block: Buffer): Buffer[] {
  const frames: Buffer[] = [];
  for (let at = 0, first = true; first || at < block.length; first = false) {
    const payload = block.subarray(at, at + maxFramePayload);
    at += payload.length;
    const last = at >= block.length;
    const head = Buffer.alloc(9);
    head.writeUIntBE(payload.length, 0, 3);
    head[3] = first ? frameHeaders : frameContinuation;
    head[4] = (first ? endStream : 0) | (last ? flagEndHeaders : 0);
    head.writeUInt32BE(stream, 5);
    frames.push(head, payload);
  }
  return frames;
}

// ---- Reading the answer as each protocol does -------------------------------

function interpret(
  protocol: TransportKind["protocol"],
  kind: RawCallKind,
  raw: Exchange,
): RawAnswer {
  const metadata = new Headers();
  const add = (name: string, value: string) => {
    try {
      metadata.append(name, value);
    } catch {
      // Not a value a Headers object holds; it still counts in `wire`.
    }
  };
  for (const [name, value] of [...raw.headers, ...raw.trailers]) add(name, value);
  const text = raw.body.toString("latin1");
  const wire = [...raw.headers, ...raw.trailers].map(([n, v]) => `${n}: ${v}`).join("\n");
  const answer = (code: Code | undefined | null, message: string | undefined): RawAnswer => ({
    status: raw.status,
    code,
    message,
    metadata,
    wire: `${raw.status}\n${wire}\n\n${text}`,
  });
  if (raw.status !== 200 && !(protocol === "connect" && kind === "unary")) {
    return answer(null, undefined);
  }
  switch (protocol) {
    case "connect": {
      if (kind === "unary") {
        if (raw.status === 200) return answer(undefined, undefined);
        const error = parseJson(text) as { code?: string; message?: string } | undefined;
        const code = codeFromString(error?.code ?? "");
        return answer(code ?? null, error?.message);
      }
      const end = frames(raw.body).find((f) => (f.flags & 0b10) !== 0);
      const json = parseJson(end?.data.toString("utf8") ?? "") as
        | { error?: { code?: string; message?: string }; metadata?: Record<string, string[]> }
        | undefined;
      for (const [name, values] of Object.entries(json?.metadata ?? {})) {
        for (const value of values) add(name, value);
      }
      if (json?.error === undefined) return answer(undefined, undefined);
      return answer(codeFromString(json.error.code ?? "") ?? null, json.error.message);
    }
    case "grpc-web": {
      for (const frame of frames(raw.body).filter((f) => (f.flags & 0x80) !== 0)) {
        for (const line of frame.data.toString("latin1").split("\r\n")) {
          const colon = line.indexOf(":");
          if (colon > 0)
            add(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
        }
      }
      return grpcStatus(metadata, answer);
    }
    case "grpc":
      return grpcStatus(metadata, answer);
  }
}

function grpcStatus(
  metadata: Headers,
  answer: (code: Code | undefined | null, message: string | undefined) => RawAnswer,
): RawAnswer {
  const status = metadata.get("grpc-status");
  if (status === null) return answer(null, undefined);
  const code = Number(status);
  const message = metadata.get("grpc-message");
  return answer(
    code === 0 ? undefined : (code as Code),
    message === null ? undefined : decodeURIComponent(message),
  );
}

function frames(body: Buffer): { flags: number; data: Buffer }[] {
  const out: { flags: number; data: Buffer }[] = [];
  for (let at = 0; at + 5 <= body.length; ) {
    const size = body.readUInt32BE(at + 1);
    out.push({ flags: body[at] ?? 0, data: body.subarray(at + 5, at + 5 + size) });
    at += 5 + size;
  }
  return out;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
