// Rendering for the demo page. Every string that comes from the server or a
// token goes into the page as text (textContent, text nodes), never as HTML.
import { Code, type ConnectError } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import type { Note, PingResponse, WhoAmIResponse } from "../../gen/demo/v1/demo_pb.js";

type Child = Node | string;

/** el makes an element with an optional id and class, and text or element children. */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: { id?: string; className?: string } = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  if (props.id !== undefined) {
    element.id = props.id;
  }
  if (props.className !== undefined) {
    element.className = props.className;
  }
  element.append(...children);
  return element;
}

/** byId finds an element of the page, of the expected type, or throws. */
export function byId<T extends HTMLElement>(id: string, type: new () => T): T {
  const element = document.getElementById(id);
  if (!(element instanceof type)) {
    throw new Error(`the page has no #${id} of the expected type`);
  }
  return element;
}

/**
 * fitHeight makes a text area as tall as its text, so that a token's last
 * line is never cut off; call it again when the width changes.
 */
export function fitHeight(textarea: HTMLTextAreaElement): void {
  textarea.style.height = "auto";
  const borders = textarea.offsetHeight - textarea.clientHeight;
  textarea.style.height = `${textarea.scrollHeight + borders}px`;
}

const reducedMotion = matchMedia("(prefers-reduced-motion: reduce)");

/**
 * reveal scrolls as little as it takes to bring the card of `element` into
 * view (on a phone the result is below the call buttons), or its top when the
 * card is taller than the window; without animation for those who asked for
 * reduced motion.
 */
function reveal(element: Element): void {
  (element.closest("section") ?? element).scrollIntoView({
    block: "nearest",
    behavior: reducedMotion.matches ? "instant" : "smooth",
  });
}

/** A definition list of `[term, id, value]` rows. */
function details(id: string, rows: [term: string, id: string, value: string][]): HTMLDListElement {
  return el(
    "dl",
    { id },
    ...rows.flatMap(([term, ddId, value]) => [el("dt", {}, term), el("dd", { id: ddId }, value)]),
  );
}

/** ResultView shows one call as it goes: pending, then its answer or its error. */
export interface ResultView {
  whoAmI(reply: WhoAmIResponse): void;
  ping(reply: PingResponse): void;
  /** Prepares the list of a stream's notes; each call of the returned function adds one. */
  notes(): (note: Note | undefined) => void;
  succeeded(): void;
  failed(err: ConnectError): void;
  /** The call was not made, for this reason. */
  notSent(reason: string): void;
}

/** showCall clears the result area and shows `title` as the call under way. */
export function showCall(title: string): ResultView {
  const result = byId("result", HTMLDivElement);
  const status = el("p", { id: "result-status" }, `${title}: calling…`);
  status.dataset.state = "pending";
  result.replaceChildren(status);
  reveal(result);
  const started = performance.now();
  const elapsed = () => `${Math.round(performance.now() - started)} ms`;
  return {
    whoAmI(reply) {
      const expires = new Date(Number(reply.expiresAt) * 1000);
      result.append(
        details("result-whoami", [
          ["Subject", "result-subject", reply.subject],
          ["Scopes", "result-scopes", reply.scopes.join(" ") || "(none)"],
          ["Issuer", "result-issuer", reply.issuer],
          ["Expires", "result-expires", expires.toLocaleString()],
        ]),
        el("h3", {}, "Claims the server verified (claims_json)"),
        el("pre", { id: "result-claims" }, prettyJson(reply.claimsJson)),
      );
    },
    ping(reply) {
      result.append(
        details("result-ping", [
          ["Text", "result-text", reply.text],
          ["Subject", "result-subject", reply.subject || "(none: no token was sent)"],
        ]),
      );
    },
    notes() {
      const list = el("ol", { id: "result-notes" });
      return (note) => {
        if (!list.isConnected) {
          // Shown with the first note, so that a refused stream shows only its error.
          result.append(el("h3", {}, "Notes, as they arrive"), list);
        }
        const item = el(
          "li",
          { className: "note" },
          note?.text ?? "",
          " ",
          el("small", {}, `${note?.id ?? ""}, owner ${note?.owner ?? ""}`),
        );
        item.dataset.testid = "note";
        list.append(item);
      };
    },
    succeeded() {
      status.textContent = `${title}: OK in ${elapsed()}`;
      status.dataset.state = "ok";
      reveal(result);
    },
    notSent(reason) {
      status.textContent = `${title}: not sent. ${reason}`;
      status.dataset.state = "not-sent";
      reveal(result);
    },
    failed(err) {
      const code = codeToString(err.code);
      const challenge = err.metadata.get("www-authenticate");
      const refused = err.code === Code.PermissionDenied || err.code === Code.Unauthenticated;
      status.replaceChildren(
        `${title}: ${refused ? "refused" : "failed"} with `,
        el("code", {}, code),
        ` in ${elapsed()}`,
      );
      status.dataset.state = "error";
      result.append(
        details("result-error", [
          ["Code", "error-code", code],
          ["Message", "error-message", err.rawMessage],
          ["WWW-Authenticate", "www-authenticate", challenge ?? "(none)"],
        ]),
        el("p", { id: "error-hint", className: "hint" }, hintFor(err.code, challenge)),
      );
      reveal(result);
    },
  };
}

/** hintFor explains a refusal in a sentence, from its code and challenge (RFC 6750, RFC 9449). */
function hintFor(code: Code, challenge: string | null): string {
  if (challenge === null) {
    return code === Code.Unavailable
      ? "The server cannot check tokens right now: its issuer's keys are not loaded."
      : "No challenge: the call failed before authentication was decided, or the browser hid it.";
  }
  if (!challenge.includes("error=")) {
    // "Bearer", or "Bearer, DPoP algs=…" from a server that accepts DPoP too.
    return "No token was sent, and this method needs one.";
  }
  if (challenge.includes('error="invalid_dpop_proof"')) {
    return "The DPoP proof was refused: used before (a replay), altered (its signature no longer fits), too old, or made for another call.";
  }
  if (challenge.startsWith("DPoP") && challenge.includes('error="invalid_token"')) {
    return "The DPoP-bound token was not accepted: tampered, expired, sent as a bearer token, or bound to another key.";
  }
  if (challenge.includes('error="invalid_request"')) {
    return "The Authorization header is malformed.";
  }
  if (challenge.includes('error="invalid_token"')) {
    return "The token was not accepted: a bad signature (a tampered token), expired, or for another issuer or audience.";
  }
  const scope = /scope="([^"]*)"/.exec(challenge)?.[1];
  return scope !== undefined
    ? `The token is valid but lacks the scope ${scope}: get a token with it.`
    : "The token is valid, but the method's rule (roles, claims) is not met.";
}

function prettyJson(json: string): string {
  try {
    return JSON.stringify(JSON.parse(json), null, 2);
  } catch {
    return json;
  }
}
