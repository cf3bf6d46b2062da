// What a load generator needs to know of one response: its HTTP status, and
// its grpc-status, which a gRPC server sends in the headers (trailers-only
// responses) or in the trailers.
import type { ClientHttp2Stream } from "node:http2";

export interface Outcome {
  /** The HTTP status; 0 until the response headers arrive. */
  status: number;
  /** `grpc-status`, from the trailers if any, else the headers. */
  grpcStatus: string | undefined;
}

/** watchOutcome records the stream's outcome as it arrives, and drains its body. */
export function watchOutcome(stream: ClientHttp2Stream): Outcome {
  const outcome: Outcome = { status: 0, grpcStatus: undefined };
  stream.on("response", (headers) => {
    outcome.status = Number(headers[":status"]);
    outcome.grpcStatus = headers["grpc-status"] as string | undefined;
  });
  stream.on("trailers", (trailers) => {
    outcome.grpcStatus = (trailers["grpc-status"] as string | undefined) ?? outcome.grpcStatus;
  });
  stream.on("data", () => {});
  return outcome;
}
