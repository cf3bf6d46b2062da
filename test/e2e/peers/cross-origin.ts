// The script of the cross-origin page in test/e2e/browser.test.ts: it calls the
// demo server, on another origin, with connect-web and connect-jwt's
// bearerAuth, and reports what happened. It is bundled by the test with esbuild.
import { ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { DemoService } from "../../../gen/demo/v1/demo_pb.js";
import { bearerAuth } from "../../../src/client/index.js";

/** One call the test asks the page to make. */
export interface CrossOriginCall {
  readonly baseUrl: string;
  readonly protocol: "connect" | "grpc-web";
  readonly method: "WhoAmI" | "ListNotes";
  /** Sent with bearerAuth; none when undefined. */
  readonly token: string | undefined;
}

/** What the page saw: the subject (or notes), or the error as the page can read it. */
export type CrossOriginResult =
  | { readonly ok: true; readonly subject: string; readonly notes: number }
  | {
      readonly ok: false;
      readonly code: number;
      readonly message: string;
      /** `null` when the header was not sent, or the browser hid it. */
      readonly wwwAuthenticate: string | null;
    };

/** The name the page exposes {@link run} under, for `page.evaluate`. */
export const globalName = "crossOriginCall";

async function run(call: CrossOriginCall): Promise<CrossOriginResult> {
  const interceptors: Interceptor[] = call.token === undefined ? [] : [bearerAuth(call.token)];
  const options = { baseUrl: call.baseUrl, interceptors };
  const transport =
    call.protocol === "connect" ? createConnectTransport(options) : createGrpcWebTransport(options);
  const client = createClient(DemoService, transport);
  try {
    if (call.method === "WhoAmI") {
      const reply = await client.whoAmI({});
      return { ok: true, subject: reply.subject, notes: 0 };
    }
    let notes = 0;
    let subject = "";
    for await (const res of client.listNotes({ limit: 2 })) {
      notes++;
      subject = res.note?.owner ?? "";
    }
    return { ok: true, subject, notes };
  } catch (err) {
    const error = ConnectError.from(err);
    return {
      ok: false,
      code: error.code,
      message: error.rawMessage,
      wwwAuthenticate: error.metadata.get("www-authenticate"),
    };
  }
}

Object.assign(globalThis, { [globalName]: run });
