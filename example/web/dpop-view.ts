// Rendering of the page's DPoP key: which key the token is bound to, and
// what the page found when it tried to export the private key.
import type { BrowserKey } from "./dpop.js";
import { byId, el } from "./view.js";

/**
 * showKey shows the key a token is bound to (its thumbprint, and whether its
 * private key could be exported), or hides the DPoP part of the page when the
 * token is not bound. `#dpop-key` carries `data-extractable` and
 * `data-export` ("refused" or "allowed") for tests to read.
 */
export function showKey(key: BrowserKey | undefined): void {
  byId("dpop-view", HTMLDivElement).hidden = key === undefined;
  if (key === undefined) {
    return;
  }
  const status = byId("dpop-key", HTMLParagraphElement);
  status.dataset.extractable = String(key.extractable);
  status.dataset.export = key.exportRefused ? "refused" : "allowed";
  status.replaceChildren(
    "Bound to this browser's ES256 key ",
    el("code", { className: "thumbprint" }, key.thumbprint),
    `. Its private key is ${key.extractable ? "extractable" : "not extractable"}: `,
    key.exportRefused ? "exportKey refused to hand it out." : "exportKey handed it out.",
  );
}
