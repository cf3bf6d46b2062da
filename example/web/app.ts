// The demo page: get a token, call DemoService from the browser over the
// Connect protocol or gRPC-Web with connect-jwt's bearerAuth interceptor (or
// dpopAuth, for a token bound to this browser's key), and show what the
// server answered. Tokens never go to the console.
import { ConnectError, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { DemoService } from "../../gen/demo/v1/demo_pb.js";
import { bearerAuth, dpopAuth } from "../../src/client/index.js";
import {
  type BrowserKey,
  createBrowserKey,
  recordWhoAmI,
  type SentCall,
  sendAgain,
  tamperProofs,
  tokenRequestProof,
} from "./dpop.js";
import { isCompactJws, requestToken, summarize, tamper } from "./token.js";
import { byId, el, fitHeight, showCall } from "./view.js";

type Protocol = "connect" | "grpcweb";
type Method = "ping" | "whoami" | "listnotes";
type Send = "token" | "none" | "tampered";

const protocolNames: Record<Protocol, string> = { connect: "Connect", grpcweb: "gRPC-Web" };
const methodNames: Record<Method, string> = {
  ping: "Ping",
  whoami: "WhoAmI",
  listnotes: "ListNotes",
};
const sendNames: Record<Send, string> = {
  token: "with the token",
  none: "without a token",
  tampered: "with a tampered token",
};

let token: string | undefined;
/** The key the token is bound to (DPoP), if it is. */
let boundKey: BrowserKey | undefined;
/** The last WhoAmI call made with the bound token, to send again. */
let lastWhoAmI: SentCall | undefined;
/** The call under way; a new call aborts it. */
let current: AbortController | undefined;

/**
 * transport sends `sent` as a bearer token, or, when the token is bound to
 * this browser's key, through dpopAuth; `tamperedProof` alters its proofs.
 */
function transport(protocol: Protocol, sent: string | undefined, tamperedProof = false): Transport {
  const interceptors: Interceptor[] =
    sent === undefined
      ? []
      : boundKey === undefined
        ? [bearerAuth(sent)]
        : [
            dpopAuth(sent, { keyPair: boundKey.keyPair }),
            // After dpopAuth, so that they see (and change) the proof it made.
            recordWhoAmI((call) => {
              lastWhoAmI = call;
            }),
            ...(tamperedProof ? [tamperProofs] : []),
          ];
  const options = { baseUrl: location.origin, interceptors };
  return protocol === "connect" ? createConnectTransport(options) : createGrpcWebTransport(options);
}

/** startCall aborts the call under way and shows `title` as the new one. */
function startCall(title: string) {
  current?.abort();
  const controller = new AbortController();
  current = controller;
  return { controller, view: showCall(title) };
}

function selectedSend(): Send {
  const checked = document.querySelector<HTMLInputElement>('input[name="send"]:checked');
  const value = checked?.value;
  return value === "none" || value === "tampered" ? value : "token";
}

async function call(method: Method, protocol: Protocol): Promise<void> {
  const send = selectedSend();
  const scheme = boundKey !== undefined && send !== "none" ? " (DPoP)" : "";
  const { controller, view } = startCall(
    `${methodNames[method]} over ${protocolNames[protocol]}, ${sendNames[send]}${scheme}`,
  );
  if (send !== "none" && token === undefined) {
    view.notSent("Get a token first, or choose to send no token.");
    return;
  }
  try {
    const sent = send === "none" ? undefined : send === "tampered" ? tamper(token ?? "") : token;
    const client = createClient(DemoService, transport(protocol, sent));
    const options = { signal: controller.signal };
    switch (method) {
      case "ping":
        view.ping(await client.ping({ text: "hello" }, options));
        break;
      case "whoami":
        view.whoAmI(await client.whoAmI({}, options));
        break;
      case "listnotes": {
        const add = view.notes();
        for await (const res of client.listNotes({ limit: 3 }, options)) {
          add(res.note);
        }
        break;
      }
    }
    view.succeeded();
  } catch (err) {
    if (!controller.signal.aborted) {
      view.failed(ConnectError.from(err));
    }
  }
}

/**
 * replayProof sends the proof of the last WhoAmI call again, with a plain
 * fetch: the server must refuse it. tamperedProof calls WhoAmI with a new
 * proof that has one character changed: refused too.
 */
async function replayProof(): Promise<void> {
  const { controller, view } = startCall("WhoAmI over Connect, the last WhoAmI proof sent again");
  if (lastWhoAmI === undefined) {
    view.notSent("Call WhoAmI with the token first: its proof is the one sent again.");
    return;
  }
  try {
    const answer = await sendAgain(lastWhoAmI, controller.signal);
    if (answer instanceof ConnectError) {
      view.failed(answer);
    } else {
      view.whoAmI(answer);
      view.succeeded();
    }
  } catch (err) {
    if (!controller.signal.aborted) {
      view.failed(ConnectError.from(err));
    }
  }
}

async function tamperedProof(): Promise<void> {
  const { controller, view } = startCall("WhoAmI over Connect, with a tampered proof (DPoP)");
  if (token === undefined) {
    view.notSent("Get a token first.");
    return;
  }
  try {
    const client = createClient(DemoService, transport("connect", token, true));
    view.whoAmI(await client.whoAmI({}, { signal: controller.signal }));
    view.succeeded();
  } catch (err) {
    if (!controller.signal.aborted) {
      view.failed(ConnectError.from(err));
    }
  }
}

/** Shows the key the token is bound to, and that the page cannot export it. */
function showKey(key: BrowserKey | undefined): void {
  boundKey = key;
  lastWhoAmI = undefined;
  const view = byId("dpop-view", HTMLDivElement);
  view.hidden = key === undefined;
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

/** Shows the token at hand and what it claims (as the token says: the server judges). */
function showToken(value: string, key?: BrowserKey): void {
  token = value;
  showKey(key);
  const { subject, scopes, expiresAt, boundTo } = summarize(value);
  const expires =
    expiresAt === undefined
      ? "no expiry"
      : `expires ${new Date(expiresAt * 1000).toLocaleString()}`;
  byId("token-status", HTMLParagraphElement).textContent =
    `Token for ${subject ?? "(no subject)"}, scopes ${scopes.join(" ") || "(none)"}, ${expires}${boundTo === undefined ? "" : ", DPoP-bound (cnf.jkt)"}.`;
  const box = byId("token", HTMLTextAreaElement);
  box.value = value;
  byId("token-view", HTMLDivElement).hidden = false;
  fitHeight(box); // once shown: a hidden text area has no height to measure
  showTokenError(undefined);
}

function showTokenError(message: string | undefined): void {
  const error = byId("token-error", HTMLParagraphElement);
  error.textContent = message ?? "";
  error.hidden = message === undefined;
}

function setUpTokenForms(): void {
  const mintForm = byId("token-form", HTMLFormElement);
  mintForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const scopes = [...mintForm.querySelectorAll<HTMLInputElement>('input[name="scope"]:checked')];
    const button = byId("get-token", HTMLButtonElement);
    button.disabled = true;
    const request = {
      sub: byId("subject", HTMLInputElement).value,
      scope: scopes.map((input) => input.value).join(" "),
      ttl: byId("ttl", HTMLInputElement).valueAsNumber,
    };
    // With the DPoP switch on: a new key, and a token request that proves it holds it.
    const bind = byId("dpop", HTMLInputElement).checked;
    (async () => {
      if (!bind) {
        showToken(await requestToken(request));
        return;
      }
      const key = await createBrowserKey();
      const proof = await tokenRequestProof(key.keyPair, `${location.origin}/demo/token`);
      showToken(await requestToken(request, proof), key);
    })()
      .catch((err: unknown) =>
        showTokenError(`No token: ${err instanceof Error ? err.message : String(err)}`),
      )
      .finally(() => {
        button.disabled = false;
      });
  });
  const pasteForm = byId("paste-form", HTMLFormElement);
  pasteForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const value = byId("token-input", HTMLTextAreaElement)
      .value.trim()
      .replace(/^Bearer\s+/i, "");
    if (isCompactJws(value)) {
      showToken(value);
    } else {
      showTokenError("That is not a JWT: paste the compact form, three parts separated by dots.");
    }
  });
}

function setUpCalls(): void {
  byId("replay-proof", HTMLButtonElement).addEventListener("click", () => {
    void replayProof();
  });
  byId("tamper-proof", HTMLButtonElement).addEventListener("click", () => {
    void tamperedProof();
  });
  for (const method of Object.keys(methodNames) as Method[]) {
    for (const protocol of Object.keys(protocolNames) as Protocol[]) {
      byId(`${method}-${protocol}`, HTMLButtonElement).addEventListener("click", () => {
        void call(method, protocol);
      });
    }
  }
}

async function showAbout(): Promise<void> {
  const res = await fetch("/about");
  if (res.ok) {
    byId("about", HTMLPreElement).textContent = await res.text();
  }
}

setUpTokenForms();
setUpCalls();
// A narrower window wraps the token onto more lines.
addEventListener("resize", () => {
  if (token !== undefined) {
    fitHeight(byId("token", HTMLTextAreaElement));
  }
});
void showAbout();
document.body.dataset.ready = "true";
