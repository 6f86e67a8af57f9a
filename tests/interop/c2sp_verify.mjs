#!/usr/bin/env node
// c2sp_verify.mjs: an independent, dependency-free C2SP proof-file verifier.
//
// Written from the public specifications only (not from modelseal's Python code):
//   - c2sp.org/signed-note          (note format, Ed25519 signatures, key IDs)
//   - c2sp.org/tlog-checkpoint      (checkpoint note text)
//   - c2sp.org/tlog-proof@v1        (offline inclusion proof file)
//   - c2sp.org/tlog-witness         (add-checkpoint request body)
//   - RFC 9162 §2.1.1, §2.1.3.2, §2.1.4.2 (hashing, inclusion and consistency verification)
// The verifier key string is the golang.org/x/mod/sumdb/note form:
//   <name>+<8 lowercase hex key ID>+<base64(0x01 || 32-byte Ed25519 public key)>
//
// Usage:
//   node c2sp_verify.mjs inclusion   --vkey VKEY --proof FILE --entry FILE [--origin O]
//   node c2sp_verify.mjs consistency --vkey VKEY --body FILE [--old-root BASE64] [--origin O]
//   node c2sp_verify.mjs note        --vkey VKEY --note FILE
// VKEY is the key string itself, or @PATH to read it from a file (one line).
// Prints "OK ..." and exits 0, or "FAIL: <reason>" and exits 1 (2 for usage errors).

import crypto from "node:crypto";
import fs from "node:fs";

class Fail extends Error {}
class Usage extends Error {}

const fail = (msg) => { throw new Fail(msg); };

const MAX_NOTE_SIGNATURES = 100; // the signed-note spec requires accepting at least 16
const MAX_FILE_BYTES = 1 << 20;
const MAX_UINT64 = (1n << 64n) - 1n;
const SIG_TYPE_ED25519 = 0x01;
const EM_DASH = "\u2014";
const SPKI_ED25519_PREFIX = Buffer.from("302a300506032b6570032100", "hex");

// ---------------------------------------------------------------------------------------
// Primitive parsers (strict)

const sha256 = (...parts) => {
  const h = crypto.createHash("sha256");
  for (const p of parts) h.update(p);
  return h.digest();
};

// RFC 4648 §4 standard base64, padded, canonical (no stray bits, no whitespace).
function b64decode(s, what) {
  if (typeof s !== "string" || s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) {
    fail(`${what}: not standard padded base64: ${JSON.stringify(s)}`);
  }
  const buf = Buffer.from(s, "base64");
  if (buf.toString("base64") !== s) fail(`${what}: non-canonical base64: ${JSON.stringify(s)}`);
  return buf;
}

// ASCII decimal, no leading zeros (except "0"), fits in uint64.
function parseDecimal(s, what) {
  if (!/^(0|[1-9][0-9]*)$/.test(s)) fail(`${what}: not a canonical decimal: ${JSON.stringify(s)}`);
  const n = BigInt(s);
  if (n > MAX_UINT64) fail(`${what}: exceeds uint64: ${s}`);
  return n;
}

function parseHash(s, what) {
  if (s === "") fail(`${what}: empty hash line`);
  const h = b64decode(s, what);
  if (h.length !== 32) fail(`${what}: hash is ${h.length} bytes, want 32`);
  return h;
}

function decodeUtf8(buf, what) {
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(buf);
  } catch {
    fail(`${what}: not valid UTF-8`);
  }
}

// Unicode spaces (Go's unicode.IsSpace: White_Space incl. U+0085, U+00A0, Zs) or '+'.
const BAD_KEY_NAME_CHAR = /[\s\p{Zs}\u0085+]/u;
function checkKeyName(name, what) {
  if (name === "") fail(`${what}: empty key name`);
  if (BAD_KEY_NAME_CHAR.test(name)) fail(`${what}: key name contains a space or '+': ${JSON.stringify(name)}`);
}

// ---------------------------------------------------------------------------------------
// Verifier key: name+hex8+base64(0x01||pubkey)

function keyIdFor(name, typeAndKey) {
  return sha256(Buffer.from(name, "utf8"), Buffer.from([0x0a]), typeAndKey).subarray(0, 4);
}

function parseVerifierKey(vkey) {
  if (/[\x00-\x20\x7f]/.test(vkey)) fail("vkey: contains whitespace or control characters");
  // The name and the key ID contain no '+'; the base64 part may.
  const p1 = vkey.indexOf("+");
  const p2 = p1 < 0 ? -1 : vkey.indexOf("+", p1 + 1);
  if (p2 < 0) fail("vkey: want name+hex8+base64");
  const name = vkey.slice(0, p1);
  const idHex = vkey.slice(p1 + 1, p2);
  const keyB64 = vkey.slice(p2 + 1);
  checkKeyName(name, "vkey");
  if (!/^[0-9a-f]{8}$/.test(idHex)) fail(`vkey: key ID must be 8 lowercase hex digits: ${JSON.stringify(idHex)}`);
  const typeAndKey = b64decode(keyB64, "vkey");
  if (typeAndKey.length !== 33 || typeAndKey[0] !== SIG_TYPE_ED25519) {
    fail("vkey: want 0x01 followed by a 32-byte Ed25519 public key");
  }
  const id = keyIdFor(name, typeAndKey);
  if (id.toString("hex") !== idHex) fail(`vkey: key ID ${idHex} does not match the key (computed ${id.toString("hex")})`);
  const pub = typeAndKey.subarray(1);
  const keyObject = crypto.createPublicKey({
    key: Buffer.concat([SPKI_ED25519_PREFIX, pub]), format: "der", type: "spki",
  });
  return { name, id, keyObject };
}

// ---------------------------------------------------------------------------------------
// Signed note (c2sp.org/signed-note)

// Returns the note text (a string ending in "\n") after checking that at least one
// signature from a trusted key verifies. Signatures from unknown keys are ignored; a
// signature from a known key (name AND ID match) that does not verify rejects the note.
function openNote(noteStr, keys) {
  if (/[\x00-\x09\x0b-\x1f]/.test(noteStr)) fail("note: contains an ASCII control character other than newline");
  const sep = noteStr.lastIndexOf("\n\n");
  if (sep < 0) fail("note: no blank line separating text and signatures");
  const text = noteStr.slice(0, sep + 1);
  const sigBlock = noteStr.slice(sep + 2);
  if (sigBlock === "" ) fail("note: no signature lines");
  if (!sigBlock.endsWith("\n")) fail("note: signature block does not end in a newline");
  const sigLines = sigBlock.slice(0, -1).split("\n");
  if (sigLines.length > MAX_NOTE_SIGNATURES) fail(`note: more than ${MAX_NOTE_SIGNATURES} signatures`);
  const msg = Buffer.from(text, "utf8");
  let verified = 0;
  for (const line of sigLines) {
    const prefix = EM_DASH + " ";
    if (!line.startsWith(prefix)) fail(`note: malformed signature line: ${JSON.stringify(line)}`);
    const rest = line.slice(prefix.length);
    const sp = rest.indexOf(" ");
    if (sp < 0) fail(`note: malformed signature line: ${JSON.stringify(line)}`);
    const name = rest.slice(0, sp);
    const sigB64 = rest.slice(sp + 1);
    checkKeyName(name, "note signature");
    const raw = b64decode(sigB64, "note signature");
    if (raw.length < 5) fail("note: signature shorter than key ID plus one byte");
    const id = raw.subarray(0, 4);
    for (const k of keys) {
      if (k.name !== name || !k.id.equals(id)) continue; // unknown key: ignore
      const sig = raw.subarray(4);
      if (sig.length !== 64 || !crypto.verify(null, msg, k.keyObject, sig)) {
        fail(`note: signature by trusted key ${name} does not verify`);
      }
      verified++;
    }
  }
  if (verified === 0) fail("note: no signature from a trusted key");
  return text;
}

// ---------------------------------------------------------------------------------------
// Checkpoint (c2sp.org/tlog-checkpoint)

function parseCheckpointText(text) {
  if (!text.endsWith("\n")) fail("checkpoint: text does not end in a newline");
  const lines = text.slice(0, -1).split("\n");
  if (lines.length < 3) fail("checkpoint: fewer than three lines");
  lines.forEach((l, i) => { if (l === "") fail(`checkpoint: line ${i + 1} is empty`); });
  const origin = lines[0];
  const size = parseDecimal(lines[1], "checkpoint size");
  const root = parseHash(lines[2], "checkpoint root");
  return { origin, size, root, extensions: lines.slice(3) };
}

function verifyCheckpoint(noteStr, keys, expectOrigin) {
  const text = openNote(noteStr, keys);
  const cp = parseCheckpointText(text);
  if (expectOrigin !== undefined && cp.origin !== expectOrigin) {
    fail(`checkpoint: origin ${JSON.stringify(cp.origin)}, want ${JSON.stringify(expectOrigin)}`);
  }
  for (const k of keys) {
    if (k.name !== cp.origin) {
      process.stderr.write(`note: key name ${JSON.stringify(k.name)} differs from origin ${JSON.stringify(cp.origin)} (tlog-checkpoint: SHOULD match)\n`);
    }
  }
  return cp;
}

// ---------------------------------------------------------------------------------------
// RFC 9162 Merkle verification

const leafHash = (data) => sha256(Buffer.from([0x00]), data);
const nodeHash = (l, r) => sha256(Buffer.from([0x01]), l, r);
const lsb = (n) => (n & 1n) === 1n;

// RFC 9162 §2.1.3.2
function verifyInclusion(index, size, leaf, path, root) {
  if (index >= size) fail(`inclusion: index ${index} is not below tree size ${size}`);
  let fn = index;
  let sn = size - 1n;
  let r = leaf;
  for (const p of path) {
    if (sn === 0n) fail("inclusion: proof too long");
    if (lsb(fn) || fn === sn) {
      r = nodeHash(p, r);
      if (!lsb(fn)) {
        while (!lsb(fn) && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn >>= 1n; sn >>= 1n;
  }
  if (sn !== 0n) fail("inclusion: proof too short");
  if (!r.equals(root)) fail("inclusion: computed root does not match the checkpoint root");
}

// RFC 9162 §2.1.4.2, plus the edge cases of tlog-witness (old 0; old == new).
function verifyConsistency(first, second, firstHash, secondHash, proof) {
  if (first > second) fail(`consistency: old size ${first} exceeds new size ${second}`);
  if (first === 0n) {
    if (proof.length !== 0) fail("consistency: proof must be empty when the old size is 0");
    return;
  }
  if (first === second) {
    if (proof.length !== 0) fail("consistency: proof must be empty when sizes are equal");
    if (!firstHash.equals(secondHash)) fail("consistency: equal sizes but different roots");
    return;
  }
  // 1. empty path fails
  if (proof.length === 0) fail("consistency: empty proof");
  let path = proof;
  // 2. power of two: prepend first_hash
  if ((first & (first - 1n)) === 0n) path = [firstHash, ...proof];
  // 3.
  let fn = first - 1n;
  let sn = second - 1n;
  // 4.
  while (lsb(fn)) { fn >>= 1n; sn >>= 1n; }
  // 5.
  let fr = path[0];
  let sr = path[0];
  // 6.
  for (const c of path.slice(1)) {
    if (sn === 0n) fail("consistency: proof too long");
    if (lsb(fn) || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if (!lsb(fn)) {
        while (!lsb(fn) && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn >>= 1n; sn >>= 1n;
  }
  // 7.
  if (sn !== 0n) fail("consistency: proof too short");
  if (!fr.equals(firstHash)) fail("consistency: computed old root does not match");
  if (!sr.equals(secondHash)) fail("consistency: computed new root does not match the checkpoint");
}

// ---------------------------------------------------------------------------------------
// File formats

// Splits s at "\n" into full lines; returns [line, restIndex] for the next line.
function nextLine(s, pos, what) {
  const nl = s.indexOf("\n", pos);
  if (nl < 0) fail(`${what}: unterminated line (missing newline or missing blank line before the checkpoint)`);
  return [s.slice(pos, nl), nl + 1];
}

function readText(path, what) {
  let buf;
  try {
    buf = fs.readFileSync(path);
  } catch (e) {
    fail(`${what}: cannot read ${path}: ${e.code || e.message}`);
  }
  if (buf.length > MAX_FILE_BYTES) fail(`${what}: file too large`);
  const s = decodeUtf8(buf, what);
  if (/[\x00-\x09\x0b-\x1f]/.test(s)) fail(`${what}: contains an ASCII control character other than newline`);
  return s;
}

// c2sp.org/tlog-proof@v1
function parseTlogProof(s) {
  let pos = 0;
  let line;
  [line, pos] = nextLine(s, pos, "tlog-proof");
  if (line !== "c2sp.org/tlog-proof@v1") fail(`tlog-proof: bad first line ${JSON.stringify(line)}`);
  [line, pos] = nextLine(s, pos, "tlog-proof");
  let extra = null;
  if (line.startsWith("extra ")) {
    extra = b64decode(line.slice("extra ".length), "tlog-proof extra");
    if (extra.length === 0) fail("tlog-proof: empty extra data (the line must be omitted instead)");
    [line, pos] = nextLine(s, pos, "tlog-proof");
  }
  if (!line.startsWith("index ")) fail(`tlog-proof: want "index N" line, got ${JSON.stringify(line)}`);
  const index = parseDecimal(line.slice("index ".length), "tlog-proof index");
  const path = [];
  for (;;) {
    [line, pos] = nextLine(s, pos, "tlog-proof");
    if (line === "") break;
    if (path.length >= 64) fail("tlog-proof: more than 64 proof lines");
    path.push(parseHash(line, `tlog-proof hash line ${path.length + 1}`));
  }
  const checkpoint = s.slice(pos);
  if (checkpoint === "") fail("tlog-proof: no checkpoint after the blank line");
  return { extra, index, path, checkpoint };
}

// c2sp.org/tlog-witness add-checkpoint request body
function parseAddCheckpoint(s) {
  let pos = 0;
  let line;
  [line, pos] = nextLine(s, pos, "add-checkpoint");
  if (!line.startsWith("old ")) fail(`add-checkpoint: want "old N" line, got ${JSON.stringify(line)}`);
  const old = parseDecimal(line.slice("old ".length), "add-checkpoint old size");
  const proof = [];
  for (;;) {
    [line, pos] = nextLine(s, pos, "add-checkpoint");
    if (line === "") break;
    if (proof.length >= 63) fail("add-checkpoint: more than 63 consistency proof lines");
    proof.push(parseHash(line, `add-checkpoint hash line ${proof.length + 1}`));
  }
  const checkpoint = s.slice(pos);
  if (checkpoint === "") fail("add-checkpoint: no checkpoint after the blank line");
  return { old, proof, checkpoint };
}

// ---------------------------------------------------------------------------------------
// Commands

function parseArgs(argv, allowed, required) {
  const out = {};
  for (let i = 0; i < argv.length; i += 2) {
    const flag = argv[i];
    if (!allowed.includes(flag)) throw new Usage(`unknown option ${flag}`);
    if (i + 1 >= argv.length) throw new Usage(`option ${flag} needs a value`);
    if (flag in out) throw new Usage(`option ${flag} given twice`);
    out[flag] = argv[i + 1];
  }
  for (const r of required) if (!(r in out)) throw new Usage(`missing ${r}`);
  return out;
}

function loadVerifierKey(arg) {
  let s = arg;
  if (arg.startsWith("@")) {
    try {
      s = fs.readFileSync(arg.slice(1), "utf8");
    } catch (e) {
      fail(`vkey: cannot read ${arg.slice(1)}: ${e.code || e.message}`);
    }
    if (s.endsWith("\n")) s = s.slice(0, -1);
  }
  return parseVerifierKey(s);
}

function cmdInclusion(argv) {
  const a = parseArgs(argv, ["--vkey", "--proof", "--entry", "--origin"], ["--vkey", "--proof", "--entry"]);
  const keys = [loadVerifierKey(a["--vkey"])];
  const proof = parseTlogProof(readText(a["--proof"], "tlog-proof"));
  const cp = verifyCheckpoint(proof.checkpoint, keys, a["--origin"]);
  let entry;
  try {
    entry = fs.readFileSync(a["--entry"]);
  } catch (e) {
    fail(`entry: cannot read ${a["--entry"]}: ${e.code || e.message}`);
  }
  verifyInclusion(proof.index, cp.size, leafHash(entry), proof.path, cp.root);
  return `OK inclusion index=${proof.index} size=${cp.size} origin=${cp.origin}`;
}

function cmdConsistency(argv) {
  const a = parseArgs(argv, ["--vkey", "--body", "--old-root", "--origin"], ["--vkey", "--body"]);
  const keys = [loadVerifierKey(a["--vkey"])];
  const body = parseAddCheckpoint(readText(a["--body"], "add-checkpoint"));
  const cp = verifyCheckpoint(body.checkpoint, keys, a["--origin"]);
  if (body.old > cp.size) fail(`add-checkpoint: old size ${body.old} exceeds checkpoint size ${cp.size}`);
  let oldRoot;
  if (a["--old-root"] !== undefined) {
    oldRoot = parseHash(a["--old-root"], "--old-root");
    if (body.old === 0n && !oldRoot.equals(sha256())) fail("--old-root: old size 0 needs the empty-tree root");
  } else if (body.old !== 0n) {
    throw new Usage("--old-root is required when the old size is not 0");
  }
  verifyConsistency(body.old, cp.size, oldRoot, cp.root, body.proof);
  return `OK consistency old=${body.old} new=${cp.size}`;
}

// Opens a bare signed note (used to anchor this client on published known-answer vectors).
function cmdNote(argv) {
  const a = parseArgs(argv, ["--vkey", "--note"], ["--vkey", "--note"]);
  const keys = [loadVerifierKey(a["--vkey"])];
  const text = openNote(readText(a["--note"], "note"), keys);
  return `OK note text=${JSON.stringify(text)}`;
}

function main(argv) {
  const [cmd, ...rest] = argv;
  try {
    let msg;
    if (cmd === "inclusion") msg = cmdInclusion(rest);
    else if (cmd === "consistency") msg = cmdConsistency(rest);
    else if (cmd === "note") msg = cmdNote(rest);
    else throw new Usage(`unknown command ${JSON.stringify(cmd)}`);
    process.stdout.write(msg + "\n");
    return 0;
  } catch (e) {
    if (e instanceof Usage) {
      process.stderr.write(`usage error: ${e.message}\n` +
        "usage: c2sp_verify.mjs inclusion --vkey VKEY --proof FILE --entry FILE [--origin O]\n" +
        "       c2sp_verify.mjs consistency --vkey VKEY --body FILE [--old-root BASE64] [--origin O]\n" +
        "       c2sp_verify.mjs note --vkey VKEY --note FILE\n");
      return 2;
    }
    if (e instanceof Fail) {
      process.stdout.write(`FAIL: ${e.message}\n`);
      return 1;
    }
    process.stdout.write(`FAIL: internal error: ${e && e.stack ? e.stack : e}\n`);
    return 1;
  }
}

process.exitCode = main(process.argv.slice(2));
