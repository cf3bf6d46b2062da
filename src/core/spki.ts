// Just enough DER to read a PEM public key without node:crypto: the kind of
// key, its curve and its RSA modulus length, so that a configured key is
// checked when the options are, synchronously. The key itself is imported
// by WebCrypto (through jose) on first use.

/** What a PEM public key is, read from its SubjectPublicKeyInfo. */
export interface SpkiInfo {
  /** The key type as Node.js names it: "rsa", "ec:prime256v1", "ed25519"... */
  readonly type: string;
  /** For RSA keys, the length of the modulus in bits. */
  readonly modulusLength: number | undefined;
}

/** A PEM block's label (`PUBLIC KEY`, `CERTIFICATE`...) and its DER bytes. */
export interface Pem {
  readonly label: string;
  readonly der: Uint8Array;
}

/** readPem reads the one PEM block of a string; throws if there is not exactly one. */
export function readPem(text: string): Pem {
  const match = /^\s*-----BEGIN ([A-Z0-9 ]+)-----([A-Za-z0-9+/=\s]+)-----END \1-----\s*$/.exec(
    text,
  );
  if (match === null) {
    throw new Error("not a single PEM block");
  }
  const binary = atob((match[2] as string).replace(/\s+/g, ""));
  return { label: match[1] as string, der: Uint8Array.from(binary, (c) => c.charCodeAt(0)) };
}

// Object identifiers in their DER encoding, as hex.
const keyTypes: Record<string, string> = {
  "2a864886f70d010101": "rsa",
  "2a864886f70d01010a": "rsa-pss",
  "2b6570": "ed25519",
  "2b6571": "ed448",
  "2b656e": "x25519",
  "2b656f": "x448",
};
const ecPublicKey = "2a8648ce3d0201";
const curves: Record<string, string> = {
  "2a8648ce3d030107": "prime256v1",
  "2b81040022": "secp384r1",
  "2b81040023": "secp521r1",
};

/** spkiOf finds the SubjectPublicKeyInfo of an X.509 certificate. */
export function spkiOf(certificate: Uint8Array): Uint8Array {
  const tbs = children(only(certificate, 0x30))[0];
  const fields = children(expect(tbs, 0x30).content);
  // version [0] is optional; then serial, signature, issuer, validity, subject, SPKI.
  const at = fields[0]?.tag === 0xa0 ? 6 : 5;
  return expect(fields[at], 0x30).whole;
}

/** readSpki reads the key type, curve and RSA modulus length of a SubjectPublicKeyInfo. */
export function readSpki(spki: Uint8Array): SpkiInfo {
  const [algorithm, bits] = children(only(spki, 0x30));
  const [oid, parameters] = children(expect(algorithm, 0x30).content);
  const id = hex(expect(oid, 0x06).content);
  const key = expect(bits, 0x03).content;
  if (id === ecPublicKey) {
    const curve = curves[hex(expect(parameters, 0x06).content)];
    return { type: `ec:${curve ?? "unknown"}`, modulusLength: undefined };
  }
  const type = keyTypes[id] ?? `unknown:${id}`;
  if (type !== "rsa" && type !== "rsa-pss") {
    return { type, modulusLength: undefined };
  }
  // The BIT STRING holds RSAPublicKey ::= SEQUENCE { modulus INTEGER, ... }
  const [modulus] = children(only(key.subarray(1), 0x30));
  return { type, modulusLength: bitLength(expect(modulus, 0x02).content) };
}

/** bitLength counts the bits of a big-endian unsigned integer. */
export function bitLength(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length && bytes[i] === 0) {
    i++;
  }
  if (i === bytes.length) {
    return 0;
  }
  return (bytes.length - i - 1) * 8 + (32 - Math.clz32(bytes[i] as number));
}

interface Element {
  readonly tag: number;
  readonly content: Uint8Array;
  readonly whole: Uint8Array;
}

function read(der: Uint8Array, start: number): Element {
  const tag = der[start];
  let length = der[start + 1];
  let offset = start + 2;
  if (tag === undefined || length === undefined) {
    throw new Error("truncated DER");
  }
  if (length > 0x80 && length <= 0x84) {
    const count = length - 0x80;
    length = 0;
    for (let i = 0; i < count; i++) {
      length = length * 256 + (der[offset + i] ?? Number.NaN);
    }
    offset += count;
  } else if (length >= 0x80) {
    throw new Error("unsupported DER length");
  }
  const end = offset + length;
  if (!(end <= der.length)) {
    throw new Error("truncated DER");
  }
  return { tag, content: der.subarray(offset, end), whole: der.subarray(start, end) };
}

function children(der: Uint8Array): Element[] {
  const out: Element[] = [];
  for (let at = 0; at < der.length; ) {
    const element = read(der, at);
    out.push(element);
    at += element.whole.length;
  }
  return out;
}

function only(der: Uint8Array, tag: number): Uint8Array {
  const element = expect(read(der, 0), tag);
  if (element.whole.length !== der.length) {
    throw new Error("trailing bytes after DER");
  }
  return element.content;
}

function expect(element: Element | undefined, tag: number): Element {
  if (element?.tag !== tag) {
    throw new Error(`expected DER tag ${tag}`);
  }
  return element;
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
