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
import { showKey } from "./dpop-view.js";
import { isCompactJws, requestToken, summarize, tamper } from "./token.js";
import { byId, fitHeight, type ResultView, showCall } from "./view.js";

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

/**
 * runCall aborts the call under way, shows `title` as the new one, and runs
 * `work`, which shows the answer; a failure shows as the refusal it is.
 */
async function runCall(
  title: string,
  work: (view: ResultView, signal: AbortSignal) => Promise<void>,
): Promise<void> {
  current?.abort();
  const controller = new AbortController();
  current = controller;
  const view = showCall(title);
  try {
    await work(view, controller.signal);
  } catch (err) {
    if (!controller.signal.aborted) {
      view.failed(ConnectError.from(err));
    }
  }
}

function selectedSend(): Send {
  const checked = document.querySelector<HTMLInputElement>('input[name="send"]:checked');
  const value = checked?.value;
  return value === "none" || value === "tampered" ? value : "token";
}

function call(method: Method, protocol: Protocol): Promise<void> {
  const send = selectedSend();
  const scheme = boundKey !== undefined && send !== "none" ? " (DPoP)" : "";
  const title = `${methodNames[method]} over ${protocolNames[protocol]}, ${sendNames[send]}${scheme}`;
  return runCall(title, async (view, signal) => {
    if (send !== "none" && token === undefined) {
      view.notSent("Get a token first, or choose to send no token.");
      return;
    }
    const sent = send === "none" ? undefined : send === "tampered" ? tamper(token ?? "") : token;
    const client = createClient(DemoService, transport(protocol, sent));
    const options = { signal };
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
  });
}

/** Sends the proof of the last admitted WhoAmI call again, with a plain fetch: refused. */
function replayProof(): Promise<void> {
  return runCall("WhoAmI over Connect, the last WhoAmI proof sent again", async (view, signal) => {
    if (lastWhoAmI === undefined) {
      view.notSent("Call WhoAmI with the token first: its proof is the one sent again.");
      return;
    }
    const answer = await sendAgain(lastWhoAmI, signal);
    if (answer instanceof ConnectError) {
      view.failed(answer);
      return;
    }
    view.whoAmI(answer);
    view.succeeded();
  });
}

/** Calls WhoAmI with a new proof that has one character changed: refused too. */
function tamperedProof(): Promise<void> {
  return runCall("WhoAmI over Connect, with a tampered proof (DPoP)", async (view, signal) => {
    if (token === undefined) {
      view.notSent("Get a token first.");
      return;
    }
    const client = createClient(DemoService, transport("connect", token, true));
    view.whoAmI(await client.whoAmI({}, { signal }));
    view.succeeded();
  });
}

/** Shows the token at hand and what it claims (as the token says: the server judges). */
function showToken(value: string, key?: BrowserKey): void {
  token = value;
  boundKey = key;
  lastWhoAmI = undefined;
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
