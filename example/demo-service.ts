import type { ConnectRouter, ServiceImpl } from "@connectrpc/connect";
import { DemoService } from "../gen/demo/v1/demo_pb.js";
import { getClaims, type JwtClaims, requireClaims } from "../src/index.js";

/** The one method callable without a token. */
export const publicMethods = ["demo.v1.DemoService/Ping"] as const;

/** The most notes ListNotes sends, whatever limit the caller asks for. */
export const maxNotes = 100;

/**
 * demoService implements DemoService. The handlers never look at headers:
 * they read who is calling only from the verified claims that connect-jwt put
 * into the call's context, so they cannot be fooled by an unverified token.
 * `requireClaims` runs before a handler reads its request stream, so a call
 * without a token is refused before any of its messages is consumed.
 * Streaming handlers stop waiting for messages when the call is aborted
 * (client gone, deadline, server shutdown), so that a shutdown does not wait
 * for an idle stream.
 */
export const demoService: ServiceImpl<typeof DemoService> = {
  ping(req, ctx) {
    const claims = getClaims(ctx);
    return { text: req.text, subject: claims === undefined ? "" : subjectOf(claims) };
  },

  whoAmI(_req, ctx) {
    const claims = requireClaims(ctx);
    return {
      subject: subjectOf(claims),
      scopes: typeof claims.scope === "string" ? claims.scope.split(" ").filter(Boolean) : [],
      issuer: typeof claims.iss === "string" ? claims.iss : "",
      expiresAt: typeof claims.exp === "number" ? BigInt(Math.trunc(claims.exp)) : 0n,
      claimsJson: JSON.stringify(claims),
    };
  },

  async *listNotes(req, ctx) {
    const owner = subjectOf(requireClaims(ctx));
    const count = Math.min(req.limit || 3, maxNotes);
    for (let i = 1; i <= count && !ctx.signal.aborted; i++) {
      yield { note: { id: `note-${i}`, owner, text: `note ${i} of ${count} for ${owner}` } };
    }
  },

  async uploadNotes(reqs, ctx) {
    const owner = subjectOf(requireClaims(ctx));
    let count = 0;
    for await (const _ of untilAborted(reqs, ctx.signal)) {
      count++;
    }
    return { count, owner };
  },

  async *chat(reqs, ctx) {
    const subject = subjectOf(requireClaims(ctx));
    for await (const req of untilAborted(reqs, ctx.signal)) {
      yield { text: req.text, subject };
    }
  },
};

/**
 * routes registers DemoService, for `connectNodeAdapter({ routes })`.
 */
export function routes(router: ConnectRouter): void {
  router.service(DemoService, demoService);
}

// `sub` is optional in a JWT; a token without one is shown as "". The type
// check guards against an issuer that sends something other than a string.
function subjectOf(claims: JwtClaims): string {
  return typeof claims.sub === "string" ? claims.sub : "";
}

/**
 * untilAborted yields the messages of a request stream, and throws the abort
 * reason (for a shutdown, a ConnectError with Code.Unavailable) as soon as the
 * signal aborts, even while waiting for the next message. It listens to the
 * signal only while it waits, so a long stream keeps no memory per message.
 */
async function* untilAborted<T>(source: AsyncIterable<T>, signal: AbortSignal): AsyncGenerator<T> {
  const messages = source[Symbol.asyncIterator]();
  for (;;) {
    signal.throwIfAborted();
    let onAbort = () => {};
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(signal.reason);
    });
    signal.addEventListener("abort", onAbort, { once: true });
    let next: IteratorResult<T>;
    try {
      next = await Promise.race([messages.next(), aborted]);
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
    if (next.done === true) {
      return;
    }
    yield next.value;
  }
}
