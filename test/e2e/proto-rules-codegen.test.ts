// The .proto rules path as a user takes it: docs/rules.md's buf.yaml and
// buf.gen.yaml, a proto of the user's that imports connectjwt/v1/auth.proto,
// `buf generate` with protoc-gen-es, a typecheck of the output under NodeNext
// resolution, and a real server that enforces the rules the proto declares.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative, sep } from "node:path";
import { after, before, describe, test } from "node:test";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import type { DescMethodUnary, DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, type Transport } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import type { JwtAuthOptions } from "../../src/index.js";
import { audience, generateTestKey, issuer, type MintOptions, mint } from "../helpers/fixtures.js";
import { startServer, type TestServer, type TransportKind, transports } from "../helpers/server.js";

const root = join(import.meta.dirname, "..", "..");
const bin = join(root, "node_modules", ".bin");
const run = promisify(execFile);
const rulesGuide = await readFile(join(root, "docs", "rules.md"), "utf8");
const key = await generateTestKey("ES256");

/** The rules guide's ```yaml block that opens with `# <name>`, so guide and test cannot drift. */
function guideYaml(name: string): string {
  const blocks = [...rulesGuide.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1] ?? "");
  const found = blocks.filter((block) => block.startsWith(`# ${name}\n`));
  assert.equal(found.length, 1, `docs/rules.md should show exactly one ${name}`);
  return found[0] ?? "";
}

// The user's API: one method guarded by a scope, one public, one left to the
// service's default rule.
const notesProto = `syntax = "proto3";

package notes.v1;

import "connectjwt/v1/auth.proto";

message Note {
  string id = 1;
  string text = 2;
}

message GetNoteRequest {
  string id = 1;
}

message GetNoteResponse {
  Note note = 1;
}

message HealthRequest {}

message HealthResponse {
  string status = 1;
}

message DeleteNoteRequest {
  string id = 1;
}

message DeleteNoteResponse {}

service NotesService {
  option (connectjwt.v1.default_rule) = {roles: ["editor"]};
  rpc GetNote(GetNoteRequest) returns (GetNoteResponse) {
    option (connectjwt.v1.rule) = {scopes: ["notes:read"]};
  }
  rpc Health(HealthRequest) returns (HealthResponse) {
    option (connectjwt.v1.rule) = {public: true};
  }
  rpc DeleteNote(DeleteNoteRequest) returns (DeleteNoteResponse) {}
}
`;

// The user's server, importing connect-jwt by its package name.
const serverSource = `import { connectNodeAdapter } from "@connectrpc/connect-node";
import { createJwtAuth, type JwtAuthOptions } from "connect-jwt";
import { NotesService } from "./gen/notes/v1/notes_pb.js";

export function notesHandler(options: JwtAuthOptions) {
  const auth = createJwtAuth(options);
  return connectNodeAdapter({
    interceptors: [auth.interceptor],
    requestGate: auth.requestGate,
    routes: (router) =>
      router.service(NotesService, {
        getNote: (req) => ({ note: { id: req.id, text: "hello" } }),
        health: () => ({ status: "serving" }),
        deleteNote: () => ({}),
      }),
  });
}
`;

// A strict user tsconfig; NodeNext is what makes a relative import need its suffix.
const userTsconfig = {
  compilerOptions: {
    target: "ES2022",
    lib: ["ES2023", "DOM"],
    module: "NodeNext",
    moduleResolution: "NodeNext",
    types: ["node"],
    strict: true,
    exactOptionalPropertyTypes: true,
    noUncheckedIndexedAccess: true,
    verbatimModuleSyntax: true,
    skipLibCheck: true,
    noEmit: true,
  },
  include: ["server.ts", "gen"],
};

/**
 * writeUserProject lays out a user's project in `work`: the rules guide's buf files,
 * the notes proto, and node_modules holding connect-jwt as it ships (its
 * auth.proto; its entry point re-exports this repo's src) next to the
 * dependencies a user installs, linked from this repo.
 */
async function writeUserProject(work: string): Promise<void> {
  await writeFile(join(work, "buf.yaml"), guideYaml("buf.yaml"));
  await writeFile(join(work, "buf.gen.yaml"), guideYaml("buf.gen.yaml"));
  await writeFile(
    join(work, "package.json"),
    JSON.stringify({ name: "notes-api", private: true, type: "module" }),
  );
  await mkdir(join(work, "proto", "notes", "v1"), { recursive: true });
  await writeFile(join(work, "proto", "notes", "v1", "notes.proto"), notesProto);
  await writeFile(join(work, "server.ts"), serverSource);
  await writeFile(join(work, "tsconfig.json"), JSON.stringify(userTsconfig));

  const modules = join(work, "node_modules");
  const pkg = join(modules, "connect-jwt");
  await cp(join(root, "proto", "connectjwt"), join(pkg, "proto", "connectjwt"), {
    recursive: true,
  });
  await writeFile(
    join(pkg, "package.json"),
    JSON.stringify({ name: "connect-jwt", type: "module", exports: { ".": "./index.ts" } }),
  );
  const src = relative(pkg, join(root, "src", "index.js")).replaceAll(sep, "/");
  await writeFile(join(pkg, "index.ts"), `export * from "${src}";\n`);
  for (const scope of ["@bufbuild", "@connectrpc", "@types"]) {
    await symlink(join(root, "node_modules", scope), join(modules, scope), "dir");
  }
}

function createTransport(kind: TransportKind, baseUrl: string): Transport {
  const options = { baseUrl, httpVersion: kind.httpVersion } as const;
  switch (kind.protocol) {
    case "connect":
      return createConnectTransport(options);
    case "grpc":
      return createGrpcTransport(options);
    case "grpc-web":
      return createGrpcWebTransport(options);
  }
}

/** The outcome of one unary call: "ok", or the code and message it was refused with. */
type Result = "ok" | { code: Code; message: string };

describe("rules in a user's .proto, generated with the rules guide's buf.gen.yaml", () => {
  let work = "";
  let server: TestServer | undefined;
  let service: DescService | undefined;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), "connect-jwt-user-"));
    await writeUserProject(work);
    const env = { ...process.env, PATH: `${bin}:${process.env.PATH}` };
    await run(join(bin, "buf"), ["generate"], { cwd: work, env, timeout: 60_000 }).catch(
      (err: { stderr?: string }) => assert.fail(`buf generate failed:\n${err.stderr ?? err}`),
    );
  });

  after(async () => {
    await server?.close();
    if (work !== "") {
      await rm(work, { recursive: true, force: true });
    }
  });

  test("buf generate writes the user's service and its own copy of auth_pb.ts", async () => {
    const notes = await readFile(join(work, "gen", "notes", "v1", "notes_pb.ts"), "utf8");
    assert.match(notes, /from "\.\.\/\.\.\/connectjwt\/v1\/auth_pb\.js";/);
    const auth = await readFile(join(work, "gen", "connectjwt", "v1", "auth_pb.ts"), "utf8");
    assert.match(auth, /export const rule: GenExtension<MethodOptions, AccessRule>/);
  });

  test("the generated code and the user's server typecheck under NodeNext", async () => {
    const output = await run(join(bin, "tsc"), ["-p", work, "--pretty", "false"], {
      cwd: work,
      timeout: 120_000,
    }).then(
      () => "",
      (err: { stdout?: string }) => err.stdout ?? String(err),
    );
    const errors = output.split(/\n(?=\S)/).filter((diagnostic) => diagnostic.trim() !== "");
    assert.deepEqual(errors, [], `tsc failed:\n${errors.join("\n")}`);
  });

  describe("the server enforces the proto's rules", () => {
    before(async () => {
      const { notesHandler } = (await import(pathToFileURL(join(work, "server.ts")).href)) as {
        notesHandler: (options: JwtAuthOptions) => (req: never, res: never) => void;
      };
      const gen = join(work, "gen", "notes", "v1", "notes_pb.ts");
      ({ NotesService: service } = (await import(pathToFileURL(gen).href)) as {
        NotesService: DescService;
      });
      server = await startServer({
        handler: notesHandler({
          jwks: { keys: [key.publicJwk] },
          issuer,
          audience,
          // Failed authentication answers Unauthenticated, so that a refusal
          // by a rule (PermissionDenied) cannot be mistaken for it.
          failureCode: Code.Unauthenticated,
        }),
      });
    });

    async function callAs(
      kind: TransportKind,
      method: "getNote" | "health" | "deleteNote",
      token?: MintOptions,
    ): Promise<Result> {
      assert.ok(server && service, "the server is not running");
      const desc = service.method[method] as DescMethodUnary;
      const headers: Record<string, string> =
        token === undefined ? {} : { authorization: `Bearer ${await mint(key, token)}` };
      try {
        await createTransport(kind, server.url).unary(desc, undefined, 10_000, headers, {});
        return "ok";
      } catch (err) {
        const error = ConnectError.from(err);
        return { code: error.code, message: error.rawMessage };
      }
    }

    const scoped = (scope: string, roles: string[] = []): MintOptions => ({
      claims: { scope, roles },
    });
    const insufficientScope = { code: Code.PermissionDenied, message: "insufficient scope" };
    const accessDenied = { code: Code.PermissionDenied, message: "access denied" };
    const missingToken = { code: Code.Unauthenticated, message: "missing bearer token" };

    for (const kind of transports) {
      test(`over ${kind.name}`, async () => {
        // (connectjwt.v1.rule) = {scopes: ["notes:read"]}
        assert.deepEqual(await callAs(kind, "getNote", scoped("notes:write")), insufficientScope);
        assert.equal(await callAs(kind, "getNote", scoped("notes:read")), "ok");
        assert.deepEqual(await callAs(kind, "getNote"), missingToken);
        // (connectjwt.v1.rule) = {public: true}
        assert.equal(await callAs(kind, "health"), "ok");
        // (connectjwt.v1.default_rule) = {roles: ["editor"]}, for a method without a rule
        assert.deepEqual(await callAs(kind, "deleteNote", scoped("notes:read")), accessDenied);
        assert.equal(await callAs(kind, "deleteNote", scoped("", ["editor"])), "ok");
      });
    }
  });
});
