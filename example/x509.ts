import { generateKeyPairSync, type KeyObject, randomBytes, sign } from "node:crypto";
import { isIPv4, isIPv6 } from "node:net";

// X.509 certificates DER-encoded by hand: Node.js can make keys but has no API
// to issue a certificate, and the demo should not need the openssl CLI.

/** der encodes one DER element: tag, definite length, content. */
export function der(tag: number, ...content: Uint8Array[]): Uint8Array {
  const body = Buffer.concat(content);
  let length: number[];
  if (body.length < 0x80) {
    length = [body.length];
  } else {
    const bytes: number[] = [];
    for (let n = body.length; n > 0; n >>= 8) {
      bytes.unshift(n & 0xff);
    }
    length = [0x80 | bytes.length, ...bytes];
  }
  return Buffer.concat([Uint8Array.of(tag, ...length), body]);
}

/** oid encodes an OBJECT IDENTIFIER such as `"2.5.4.3"`. */
export function oid(dotted: string): Uint8Array {
  const [first = 0, second = 0, ...rest] = dotted.split(".").map(Number);
  const bytes = [40 * first + second];
  for (const arc of rest) {
    const chunk = [arc & 0x7f];
    for (let n = arc >> 7; n > 0; n >>= 7) {
      chunk.unshift(0x80 | (n & 0x7f));
    }
    bytes.push(...chunk);
  }
  return der(0x06, Uint8Array.from(bytes));
}

const sequence = (...content: Uint8Array[]) => der(0x30, ...content);
const ecdsaWithSha256 = sequence(oid("1.2.840.10045.4.3.2"));

/** A Name with a single common name (CN). */
function name(commonName: string): Uint8Array {
  return sequence(der(0x31, sequence(oid("2.5.4.3"), der(0x0c, Buffer.from(commonName, "utf8")))));
}

/** UTCTime until 2049, GeneralizedTime from 2050 on (RFC 5280 section 4.1.2.5). */
function time(date: Date): Uint8Array {
  const iso = date.toISOString(); // 2030-01-01T00:00:00.000Z
  const digits = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  return date.getUTCFullYear() < 2050
    ? der(0x17, Buffer.from(digits.slice(2), "ascii"))
    : der(0x18, Buffer.from(digits, "ascii"));
}

function extension(id: string, critical: boolean, value: Uint8Array): Uint8Array {
  return sequence(oid(id), ...(critical ? [der(0x01, Uint8Array.of(0xff))] : []), der(0x04, value));
}

/** A subjectAltName entry: dNSName [2] or iPAddress [7] (4 or 16 bytes). */
function altName(host: string): Uint8Array {
  if (isIPv4(host)) {
    return der(0x87, Uint8Array.from(host.split(".").map(Number)));
  }
  if (isIPv6(host) && !host.includes(".")) {
    const [head = "", tail] = host.split("::");
    const groups = (part: string | undefined) =>
      part ? part.split(":").map((group) => Number.parseInt(group, 16)) : [];
    const left = groups(head);
    const right = groups(tail);
    const all =
      tail === undefined
        ? left
        : [...left, ...Array<number>(8 - left.length - right.length).fill(0), ...right];
    return der(0x87, Uint8Array.from(all.flatMap((group) => [group >> 8, group & 0xff])));
  }
  if (!/^[a-z0-9.-]+$/i.test(host)) {
    throw new TypeError(
      `cannot put ${JSON.stringify(host)} in a certificate: not a DNS name or IP`,
    );
  }
  return der(0x82, Buffer.from(host, "ascii"));
}

/** CertificateOptions describe the certificate {@link issueCertificate} signs. */
export interface CertificateOptions {
  /** The public key the certificate is for. */
  readonly subjectKey: KeyObject;
  /** The subject's common name. */
  readonly subjectName: string;
  /** The issuer's private key: ECDSA P-256, signing with SHA-256. */
  readonly issuerKey: KeyObject;
  /** The issuer's common name. Default: the subject's (self-signed). */
  readonly issuerName?: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** Default: 16 random bytes. */
  readonly serialNumber?: Uint8Array;
  /**
   * DNS names and IP addresses of a TLS server. When given, the certificate
   * gets subjectAltName, and the extensions of a server certificate (not a CA,
   * digitalSignature, serverAuth).
   */
  readonly serverNames?: readonly string[];
}

/**
 * issueCertificate signs an X.509 v3 certificate and returns it PEM-encoded.
 *
 * @example
 * ```ts
 * const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
 * const pem = issueCertificate({ subjectKey: publicKey, subjectName: "localhost",
 *   issuerKey: privateKey, notBefore: new Date(), notAfter: new Date(Date.now() + 864e5) });
 * ```
 */
export function issueCertificate(options: CertificateOptions): string {
  // A random serial must be a positive INTEGER in its shortest form: clear the
  // sign bit and make the first byte nonzero.
  const serialNumber =
    options.serialNumber ??
    Uint8Array.from(randomBytes(16), (byte, i) => (i === 0 ? (byte & 0x7f) | 0x01 : byte));
  const extensions =
    options.serverNames === undefined
      ? []
      : [
          der(
            0xa3,
            sequence(
              extension("2.5.29.19", true, sequence()), // basicConstraints: not a CA
              extension("2.5.29.15", true, der(0x03, Uint8Array.of(0x07, 0x80))), // digitalSignature
              extension("2.5.29.37", false, sequence(oid("1.3.6.1.5.5.7.3.1"))), // serverAuth
              extension("2.5.29.17", false, sequence(...options.serverNames.map(altName))),
            ),
          ),
        ];
  const tbs = sequence(
    der(0xa0, der(0x02, Uint8Array.of(2))), // version v3
    der(0x02, serialNumber),
    ecdsaWithSha256,
    name(options.issuerName ?? options.subjectName),
    sequence(time(options.notBefore), time(options.notAfter)),
    name(options.subjectName),
    options.subjectKey.export({ type: "spki", format: "der" }),
    ...extensions,
  );
  const signature = sign("sha256", tbs, options.issuerKey);
  const certificate = sequence(tbs, ecdsaWithSha256, der(0x03, Uint8Array.of(0), signature));
  const lines =
    Buffer.from(certificate)
      .toString("base64")
      .match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join("\n")}\n-----END CERTIFICATE-----\n`;
}

/** A certificate and its private key, both PEM: what `tls.createServer` takes. */
export interface TlsCredentials {
  readonly cert: string;
  readonly key: string;
}

/** The names a local server is reached by. */
export const localhostNames = ["localhost", "127.0.0.1", "::1"] as const;

/**
 * selfSignedCertificate makes a fresh ECDSA P-256 key and a self-signed
 * certificate for `names` (default: localhost, 127.0.0.1, ::1), valid from an
 * hour ago for `days` days. Clients must be told to trust it (`ca`) or not to
 * check (`--insecure`); the key is never written anywhere.
 */
export function selfSignedCertificate(
  names: readonly string[] = localhostNames,
  days = 30,
): TlsCredentials {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const now = Date.now();
  const cert = issueCertificate({
    subjectKey: publicKey,
    subjectName: names[0] ?? "localhost",
    issuerKey: privateKey,
    notBefore: new Date(now - 3600_000),
    notAfter: new Date(now + days * 86_400_000),
    serverNames: names,
  });
  return { cert, key: privateKey.export({ type: "pkcs8", format: "pem" }).toString() };
}
