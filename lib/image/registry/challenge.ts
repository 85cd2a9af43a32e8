/** `WWW-Authenticate` parsing (RFC 7235): `Bearer realm="…",service="…",scope="…"`, `Basic realm="…"`. */

export interface Challenge {
  /** Lowercased: 'bearer', 'basic'. */
  scheme: string;
  params: Record<string, string>;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+/;

/** All challenges in the header(s); unknown syntax is skipped, never thrown. */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  if (header === undefined) return [];
  const out: Challenge[] = [];
  for (const h of Array.isArray(header) ? header : [header]) {
    let s = h.trim();
    let current: Challenge | undefined;
    while (s.length > 0) {
      const name = TOKEN.exec(s)?.[0];
      if (!name) break;
      let rest = s.slice(name.length).replace(/^\s+/, '');
      if (rest.startsWith('=') && current) {
        rest = rest.slice(1).replace(/^\s+/, '');
        let value: string;
        if (rest.startsWith('"')) {
          let i = 1;
          value = '';
          while (i < rest.length && rest[i] !== '"') {
            if (rest[i] === '\\' && i + 1 < rest.length) i++;
            value += rest[i];
            i++;
          }
          rest = rest.slice(i + 1);
        } else {
          value = TOKEN.exec(rest)?.[0] ?? '';
          rest = rest.slice(value.length);
        }
        current.params[name.toLowerCase()] = value;
      } else {
        current = { scheme: name.toLowerCase(), params: {} };
        out.push(current);
      }
      s = rest.replace(/^[\s,]+/, '');
    }
  }
  return out;
}
