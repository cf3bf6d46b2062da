import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import {
  type Code,
  ConnectError,
  type Interceptor,
  type StreamRequest,
  type UnaryRequest,
} from "@connectrpc/connect";
import type { DpopKeyPair } from "./dpop-key-pair.js";
import { createDpopSigner } from "./dpop-proof.js";
import { challengeOf, createTokenAuth, type TokenAuthOptions } from "./token-auth.js";
import type { TokenProvider } from "./token-source.js";

/**
 * DpopAuthOptions configure {@link dpopAuth}: the key pair, and the options
 * of {@link bearerAuth}.
 *
 * @example
 * ```ts
 * const options: DpopAuthOptions = {
 *   keyPair: await createDpopKeyPair(),
 *   failureCode: Code.Unauthenticated, // as the server's createJwtAuth
 * };
 * const interceptor = dpopAuth(() => session.getAccessToken(), options);
 * ```
 */
export interface DpopAuthOptions extends TokenAuthOptions {
  /** The key pair that signs the proofs, e.g. from `createDpopKeyPair()`. */
  keyPair: DpopKeyPair;
  /**
   * The `useHttpGet` of the Connect transport this interceptor is given to.
   * Default false. Interceptors run before the transport turns a call of a
   * side-effect-free method into a GET request, so they cannot see it: tell
   * it here, or such calls carry proofs for POST that the server refuses.
   */
  useHttpGet?: boolean;
}

/** The latest nonce of so many origins is kept; a client talks to a few. */
const maxOrigins = 100;

/** A nonce's characters (RFC 9449 §8.1: NQCHAR). */
const nonceSyntax = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

/**
 * dpopAuth is a client interceptor that sends tokens bound to the caller's
 * key (DPoP, RFC 9449): every call carries `Authorization: DPoP <token>` and
 * a `DPoP` header holding a new proof signed with `keyPair`, for the call's
 * method and URL and for the token, so a stolen token is useless without the
 * key. Tokens come as for {@link bearerAuth}: a token or a provider, reused
 * until shortly before `exp`, one shared refresh, and one retry of a unary
 * call whose token was refused with `error="invalid_token"`. The latest
 * `DPoP-Nonce` of each origin goes into later proofs to it; a unary call
 * refused with `error="use_dpop_nonce"` (with the server's failure code) is
 * retried once with the nonce: it was refused before any handler ran. A
 * streaming call is never replayed. In browsers the server must expose
 * `WWW-Authenticate` and `DPoP-Nonce` through CORS and allow the `DPoP`
 * request header.
 *
 * @example
 * ```ts
 * const keyPair = await createDpopKeyPair();
 * const transport = createConnectTransport({
 *   baseUrl: "https://api.example.com",
 *   interceptors: [dpopAuth(() => session.getAccessToken(), { keyPair })],
 * });
 * ```
 */
export function dpopAuth(token: string | TokenProvider, options: DpopAuthOptions): Interceptor {
  const signer = createDpopSigner(options?.keyPair, "dpopAuth");
  const auth = createTokenAuth("dpopAuth", token, options);
  const useHttpGet = options.useHttpGet ?? false;
  const nonces = new Map<string, string>();

  function remember(origin: string, header: Headers): void {
    const nonce = header.get("dpop-nonce");
    if (nonce === null || !nonceSyntax.test(nonce)) {
      return;
    }
    nonces.delete(origin);
    if (nonces.size >= maxOrigins) {
      nonces.delete(nonces.keys().next().value as string);
    }
    nonces.set(origin, nonce);
  }

  return (next) => async (req) => {
    const url = new URL(req.url);
    url.search = "";
    url.hash = "";
    const htm = httpMethodOf(req, useHttpGet);
    const rememberFrom = (err: unknown) => {
      if (err instanceof ConnectError) {
        remember(url.origin, err.metadata);
      }
    };
    const send = async (token: string) => {
      const nonce = nonces.get(url.origin);
      req.header.set("authorization", `DPoP ${token}`);
      req.header.set("dpop", await signer.sign({ htm, htu: url.href, token, nonce }));
      try {
        const res = await next(req);
        remember(url.origin, res.header);
        if (!res.stream) {
          return res;
        }
        // A stream may be refused after its headers: read the nonce of that refusal too.
        const messages = res.message;
        return {
          ...res,
          message: (async function* () {
            try {
              yield* messages;
            } catch (err) {
              rememberFrom(err);
              throw err;
            }
          })(),
        };
      } catch (err) {
        rememberFrom(err);
        throw err;
      }
    };

    let current = await auth.source.get();
    if (req.stream) {
      return send(current);
    }
    let nonceRetried = false;
    let tokenRetried = false;
    for (;;) {
      try {
        return await send(current);
      } catch (err) {
        if (!nonceRetried && asksForNonce(err, auth.failureCode)) {
          nonceRetried = true;
          continue;
        }
        const fresh = tokenRetried ? undefined : await auth.freshTokenAfter(err, current);
        if (fresh === undefined) {
          throw err;
        }
        tokenRetried = true;
        current = fresh;
      }
    }
  };
}

/**
 * Whether the server refused the call for want of a current nonce, and gave
 * one: the one refusal a retry with the nonce can change.
 */
function asksForNonce(err: unknown, failureCode: Code): boolean {
  const challenge = challengeOf(err, failureCode);
  return (
    challenge !== null &&
    /\berror="use_dpop_nonce"/.test(challenge) &&
    err instanceof ConnectError &&
    nonceSyntax.test(err.metadata.get("dpop-nonce") ?? "")
  );
}

/**
 * The HTTP method the call goes out with. The Connect transports turn a unary
 * call of a side-effect-free method into a GET when `useHttpGet` is on, after
 * the interceptors ran: a Connect unary request carries
 * `Connect-Protocol-Version`, gRPC and gRPC-Web requests do not.
 */
function httpMethodOf(req: UnaryRequest | StreamRequest, useHttpGet: boolean): string {
  if (
    useHttpGet &&
    !req.stream &&
    req.method.idempotency === MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS &&
    req.header.has("connect-protocol-version")
  ) {
    return "GET";
  }
  return req.requestMethod;
}
