/**
 * Image references as docker parses them (distribution/reference, normalize.go): a missing domain
 * is docker.io, a one-part Docker Hub path gets `library/`, a reference with neither tag nor digest
 * gets `:latest`. The first path part is a domain only if it holds a `.` or `:` or is `localhost`
 * (or has capitals, which a repository name never does).
 */
import { ValidationError } from '../errors.js';

export const DEFAULT_DOMAIN = 'docker.io';
const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
const OFFICIAL_PREFIX = 'library/';
const NAME_MAX = 255;

const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN_RE = new RegExp(`^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[0-9a-fA-F:.]+\\])(?::[0-9]+)?$`);
const PATH_COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const DIGEST_RE = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;
const SHA256_RE = /^sha256:[0-9a-f]{64}$/;
const HEX64_RE = /^[0-9a-f]{64}$/;

export interface Reference {
  /** Registry host, with port when given: `docker.io`, `127.0.0.1:5000`. */
  readonly domain: string;
  /** Repository path inside the registry: `library/busybox`, `a/b`. */
  readonly path: string;
  readonly tag?: string;
  /** `sha256:<64 hex>` */
  readonly digest?: string;
  /** `domain/path` */
  readonly name: string;
  /** The short form docker prints: `busybox:latest`, `127.0.0.1:5000/a/b:tag`. */
  readonly familiar: string;
  /** The fully qualified form: `docker.io/library/busybox:latest`. */
  toString(): string;
}

function invalid(input: string, why: string): never {
  throw new ValidationError(`invalid image reference ${JSON.stringify(input)}: ${why}`, 'reference');
}

/** Whether `s` is a digest in the form registries accept (`sha256:` + 64 lowercase hex, or another algorithm). */
export function isDigest(s: string): boolean {
  return DIGEST_RE.test(s) && (!s.startsWith('sha256:') || SHA256_RE.test(s));
}

/** Parses a reference (`busybox`, `host:5000/a/b:tag`, `name@sha256:…`, `name:tag@sha256:…`). */
export function parseReference(input: string): Reference {
  if (typeof input !== 'string' || input.length === 0) invalid(String(input), 'it is empty');
  if (input !== input.trim()) invalid(input, 'it has leading or trailing white space');

  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST_RE.test(digest)) invalid(input, `${JSON.stringify(digest)} is not a digest (expected sha256:<64 hex digits>)`);
    if (digest.startsWith('sha256:') && !SHA256_RE.test(digest)) {
      invalid(input, 'a sha256 digest is 64 lowercase hex digits');
    }
  }

  // A tag is after the last ':' that follows the last '/' (a ':' before it is the domain's port).
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) {
      invalid(input, `${JSON.stringify(tag)} is not a valid tag (letters, digits, '_', '.', '-'; at most 128; not starting with '.' or '-')`);
    }
  }
  if (rest.length === 0) invalid(input, 'the repository name is missing');
  if (HEX64_RE.test(rest)) invalid(input, 'a repository name cannot be a 64-character hex string (use name@sha256:…)');

  let domain: string;
  let path: string;
  const slash = rest.indexOf('/');
  const first = slash === -1 ? '' : rest.slice(0, slash);
  if (slash === -1 || (!/[.:]/.test(first) && first !== 'localhost' && first.toLowerCase() === first)) {
    domain = DEFAULT_DOMAIN;
    path = rest;
  } else {
    domain = first;
    path = rest.slice(slash + 1);
  }
  if (!DOMAIN_RE.test(domain)) invalid(input, `${JSON.stringify(domain)} is not a valid registry host`);
  if (domain === LEGACY_DEFAULT_DOMAIN) domain = DEFAULT_DOMAIN;
  if (path.toLowerCase() !== path) invalid(input, 'the repository name must be lowercase');
  for (const part of path.split('/')) {
    if (!PATH_COMPONENT_RE.test(part)) {
      invalid(input, part === ''
        ? 'the repository name has an empty path component'
        : `${JSON.stringify(part)} is not a valid repository path component (lowercase letters, digits, separated by '.', '_', '__' or '-')`);
    }
  }
  if (domain === DEFAULT_DOMAIN && !path.includes('/')) path = OFFICIAL_PREFIX + path;
  if (domain.length + 1 + path.length > NAME_MAX) invalid(input, `the repository name is longer than ${NAME_MAX} characters`);

  if (tag === undefined && digest === undefined) tag = 'latest';
  return makeReference(domain, path, tag, digest);
}

/** Builds a reference from parts already known to be valid (e.g. a parsed one with a new digest). */
export function makeReference(domain: string, path: string, tag?: string, digest?: string): Reference {
  const name = `${domain}/${path}`;
  const suffix = (tag === undefined ? '' : `:${tag}`) + (digest === undefined ? '' : `@${digest}`);
  let short = name;
  if (domain === DEFAULT_DOMAIN) {
    short = path.startsWith(OFFICIAL_PREFIX) && path.split('/').length === 2 ? path.slice(OFFICIAL_PREFIX.length) : path;
  }
  const full = name + suffix;
  return Object.freeze({
    domain,
    path,
    ...(tag === undefined ? {} : { tag }),
    ...(digest === undefined ? {} : { digest }),
    name,
    familiar: short + suffix,
    toString: () => full,
  });
}

/** The same repository at `digest` (tag kept, as docker prints `name:tag@digest`). */
export function withDigest(ref: Reference, digest: string): Reference {
  return makeReference(ref.domain, ref.path, ref.tag, digest);
}
