import {
  calculateJwkThumbprint,
  decodeJwt,
  decodeProtectedHeader,
  EmbeddedJWK,
  errors,
  type JWK,
  jwtVerify,
} from "jose";
import { type DpopReplayStore, memoryReplayStore } from "../src/index.js";

/** The algorithms a token request's proof may be signed with: those the demo's server accepts. */
export const tokenProofAlgorithms = ["ES256", "EdDSA", "PS256", "RS256"] as const;

/** The longest proof accepted, in characters (as connect-jwt's default `maxProofSize`). */
const maxProofSize = 8192;
/** How old a proof's `iat` may be, and how far in the future, in seconds. */
const maxAge = 300;
const clockTolerance = 5;
/** The JWK members of a private or symmetric key: none may come in a proof. */
const privateMembers = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/**
 * TokenProofError is a refused token-request proof: `invalid_dpop_proof`
 * (RFC 9449 §5) with a fixed description that never repeats the proof, and
 * the HTTP status to answer with (400, or 503 when the replay store is full).
 */
export class TokenProofError extends Error {
  override readonly name = "TokenProofError";
  readonly error = "invalid_dpop_proof";
  constructor(
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

/** TokenProofs checks the `DPoP` header of token requests (see {@link createTokenProofs}). */
export interface TokenProofs {
  /**
   * thumbprintOf checks the proof in a request's `DPoP` header and resolves
   * to its key's RFC 7638 thumbprint, the `cnf.jkt` of the token to mint. It
   * rejects with a {@link TokenProofError}.
   */
  thumbprintOf(header: string | readonly string[]): Promise<string>;
}

/**
 * createTokenProofs checks the DPoP proofs of `POST /demo/token` (RFC 9449
 * §4.3, for a request without an access token): one compact JWS of `typ`
 * `dpop+jwt`, an allowed asymmetric `alg`, a public `jwk` whose signature
 * verifies, `htm` POST, `htu` one of `tokenUrls`, `iat` within 5 minutes, and
 * a `jti` never seen before with that key. The checks that cost nothing come
 * before the signature; a proof is remembered only once its signature verified.
 *
 * @example
 * ```ts
 * const proofs = createTokenProofs({ tokenUrls: ["http://127.0.0.1:8080/demo/token"] });
 * const jkt = await proofs.thumbprintOf(proof);
 * ```
 */
export function createTokenProofs(options: {
  tokenUrls: readonly string[];
  replayStore?: DpopReplayStore;
}): TokenProofs {
  const tokenUrls = new Set(options.tokenUrls.map((url) => new URL(url).href));
  // Bounded: when full of unexpired proofs it refuses new ones rather than forget one.
  const replayStore = options.replayStore ?? memoryReplayStore({ maxEntries: 100_000 });
  return {
    async thumbprintOf(header) {
      const proof = typeof header === "string" ? header : undefined;
      // Two headers arrive as an array, or joined by ", ": neither is one compact JWS.
      if (proof === undefined || !/^[\w-]+\.[\w-]+\.[\w-]+$/.test(proof)) {
        throw new TokenProofError("the DPoP header must hold one proof, a compact JWS");
      }
      if (proof.length > maxProofSize) {
        throw new TokenProofError(`the DPoP proof is longer than ${maxProofSize} characters`);
      }
      const jwk = checkHeader(proof);
      checkClaims(proof, tokenUrls);
      const { payload } = await jwtVerify(proof, EmbeddedJWK, {
        typ: "dpop+jwt",
        algorithms: [...tokenProofAlgorithms],
        maxTokenAge: maxAge,
        clockTolerance,
      }).catch((err: unknown) => {
        throw verifyError(err);
      });
      const thumbprint = await calculateJwkThumbprint(jwk, "sha256");
      let first: boolean;
      try {
        first = await replayStore.use(
          `${thumbprint}:${String(payload.jti)}`,
          Number(payload.iat) + maxAge + clockTolerance,
        );
      } catch {
        throw new TokenProofError("too many DPoP proofs at once; retry in a few minutes", 503);
      }
      if (!first) {
        throw new TokenProofError("the DPoP proof was used before; make a new one per request");
      }
      return thumbprint;
    },
  };
}

/** The protected header's checks; resolves to the public `jwk`. */
function checkHeader(proof: string): JWK {
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(proof);
  } catch {
    throw new TokenProofError("the DPoP proof's header is not a JSON object");
  }
  if (header.typ !== "dpop+jwt") {
    throw new TokenProofError("the DPoP proof's typ must be dpop+jwt");
  }
  if (!(tokenProofAlgorithms as readonly unknown[]).includes(header.alg)) {
    throw new TokenProofError(
      `the DPoP proof's alg must be one of ${tokenProofAlgorithms.join(", ")}`,
    );
  }
  const { jwk } = header;
  if (
    typeof jwk !== "object" ||
    jwk === null ||
    Array.isArray(jwk) ||
    privateMembers.some((member) => member in jwk)
  ) {
    throw new TokenProofError("the DPoP proof's jwk must be a public key");
  }
  return jwk;
}

/** The claims' checks that need no signature: `jti`, `htm`, `htu`, `iat` present and right. */
function checkClaims(proof: string, tokenUrls: ReadonlySet<string>): void {
  let claims: ReturnType<typeof decodeJwt>;
  try {
    claims = decodeJwt(proof);
  } catch {
    throw new TokenProofError("the DPoP proof's payload is not a JSON object");
  }
  const { jti, htm, htu, iat } = claims;
  if (typeof jti !== "string" || jti.length === 0 || jti.length > 256) {
    throw new TokenProofError("the DPoP proof needs a jti of 1 to 256 characters");
  }
  if (typeof iat !== "number") {
    throw new TokenProofError("the DPoP proof needs an iat");
  }
  if (htm !== "POST") {
    throw new TokenProofError("the DPoP proof's htm must be POST");
  }
  if (
    typeof htu !== "string" ||
    /[?#]/.test(htu) ||
    !URL.canParse(htu) ||
    !tokenUrls.has(new URL(htu).href)
  ) {
    throw new TokenProofError("the DPoP proof's htu must be this token endpoint's URL");
  }
}

/** A fixed description for jose's refusal: it never carries jose's own text. */
function verifyError(err: unknown): TokenProofError {
  if (err instanceof errors.JWTExpired) {
    return new TokenProofError("the DPoP proof is too old: make a new one per request");
  }
  if (err instanceof errors.JWTClaimValidationFailed && err.claim === "iat") {
    return new TokenProofError("the DPoP proof's iat is in the future: check the clock");
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) {
    return new TokenProofError("the DPoP proof's signature does not verify");
  }
  return new TokenProofError("the DPoP proof's jwk must be a public key that fits its alg");
}
