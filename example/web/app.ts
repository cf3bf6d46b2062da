// The demo page: get a token, call DemoService from the browser over the
// Connect protocol or gRPC-Web with connect-jwt's bearerAuth interceptor, and
// show what the server answered. Tokens never go to the console.
import { ConnectError, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { DemoService } from "../../gen/demo/v1/demo_pb.js";
import { bearerAuth } from "../../src/client/index.js";
import { isCompactJws, requestToken, summarize, tamper } from "./token.js";
import { byId, fitHeight, showCall } from "./view.js";

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
/** The call under way; a new call aborts it. */
let current: AbortController | undefined;

function transport(protocol: Protocol, sent: string | undefined): Transport {
  const interceptors: Interceptor[] = sent === undefined ? [] : [bearerAuth(sent)];
  const options = { baseUrl: location.origin, interceptors };
  return protocol === "connect" ? createConnectTransport(options) : createGrpcWebTransport(options);
}

function selectedSend(): Send {
  const checked = document.querySelector<HTMLInputElement>('input[name="send"]:checked');
  const value = checked?.value;
  return value === "none" || value === "tampered" ? value : "token";
}

async function call(method: Method, protocol: Protocol): Promise<void> {
  current?.abort();
  const controller = new AbortController();
  current = controller;
  const send = selectedSend();
  const view = showCall(
    `${methodNames[method]} over ${protocolNames[protocol]}, ${sendNames[send]}`,
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

/** Shows the token at hand and what it claims (as the token says: the server judges). */
function showToken(value: string): void {
  token = value;
  const { subject, scopes, expiresAt } = summarize(value);
  const expires =
    expiresAt === undefined
      ? "no expiry"
      : `expires ${new Date(expiresAt * 1000).toLocaleString()}`;
  byId("token-status", HTMLParagraphElement).textContent =
    `Token for ${subject ?? "(no subject)"}, scopes ${scopes.join(" ") || "(none)"}, ${expires}.`;
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
    requestToken({
      sub: byId("subject", HTMLInputElement).value,
      scope: scopes.map((input) => input.value).join(" "),
      ttl: byId("ttl", HTMLInputElement).valueAsNumber,
    })
      .then(showToken, (err: unknown) =>
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
