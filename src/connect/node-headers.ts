/** The parts of a Node.js request (node:http or node:http2) that joinAuthorizationHeaders reads. */
export interface NodeRequestHeaders {
  /** Every header line as received: name, value, name, value… */
  readonly rawHeaders: readonly string[];
  /** The parsed headers, which Connect reads. */
  headers: Record<string, string | string[] | undefined>;
}

/**
 * joinAuthorizationHeaders wraps a Node.js request handler so that a request
 * with several `authorization` headers is refused as malformed. Node.js keeps
 * only the first of them (on HTTP/1.1 and HTTP/2), so without this wrapper
 * `Bearer <valid>` followed by `Bearer <anything>` would authenticate as the
 * first; with it, the values are joined with ", " as HTTP says, and the
 * bearer-token parser refuses the comma.
 *
 * @example
 * ```ts
 * http2.createServer(joinAuthorizationHeaders(connectNodeAdapter({ routes, interceptors, requestGate })));
 * ```
 */
export function joinAuthorizationHeaders<Req extends NodeRequestHeaders, Res>(
  handler: (req: Req, res: Res) => void,
): (req: Req, res: Res) => void {
  return (req, res) => {
    const raw = req.rawHeaders;
    const values: string[] = [];
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = raw[i] as string;
      if (name.length === 13 && name.toLowerCase() === "authorization") {
        values.push(raw[i + 1] as string);
      }
    }
    if (values.length > 1) {
      req.headers.authorization = values.join(", ");
    }
    handler(req, res);
  };
}
