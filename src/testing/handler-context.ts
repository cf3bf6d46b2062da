import type { DescMethod } from "@bufbuild/protobuf";
import {
  type ContextValues,
  createContextValues,
  createHandlerContext,
  type HandlerContext,
} from "@connectrpc/connect";
import { claimsKey } from "../connect/context.js";
import { freezeClaims } from "../core/claims.js";

/**
 * withClaims puts claims into context values as the auth would, frozen, so a
 * handler unit test can skip tokens altogether.
 *
 * @example
 * ```ts
 * const ctx = createHandlerContext({ ..., contextValues: withClaims({ sub: "alice" }) });
 * ```
 */
export function withClaims(
  claims: Record<string, unknown>,
  values: ContextValues = createContextValues(),
): ContextValues {
  values.set(claimsKey, freezeClaims(claims));
  return values;
}

/**
 * createTestContext makes a HandlerContext for calling a handler directly in
 * a unit test, with the given claims (or none, as on a public method called
 * without a token).
 *
 * @example
 * ```ts
 * const ctx = createTestContext(NotesService.method.listNotes, { sub: "alice", scope: "notes:read" });
 * const res = await impl.listNotes(create(ListNotesRequestSchema), ctx);
 * ```
 */
export function createTestContext(
  method: DescMethod,
  claims?: Record<string, unknown>,
): HandlerContext {
  const values = claims === undefined ? createContextValues() : withClaims(claims);
  return createHandlerContext({
    service: method.parent,
    method,
    protocolName: "connect",
    requestMethod: "POST",
    url: `http://localhost/${method.parent.typeName}/${method.name}`,
    contextValues: values,
  });
}
