import dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import ipaddr from 'ipaddr.js';

/**
 * Server-side-request-forgery guard for webhook subscription URLs.
 *
 * In production a subscription URL must be `https` and must not resolve to a loopback, private,
 * link-local or cloud metadata address; this is checked when the subscription is made
 * (`urlRefusal` + `resolveChecked`) and again at delivery time (`checkedLookup`, which pins the
 * address it checked, against DNS rebinding). `allowPrivate` (`WEBHOOK_ALLOW_PRIVATE_URLS=true`)
 * lifts the address and scheme checks, for development and tests only.
 *
 * Range classification is ipaddr.js's (IANA special-purpose registries, RFC 6890): only its range
 * `unicast` counts as public, and for IPv6 only inside global unicast space 2000::/3 (RFC 4291).
 */

/** The error code of an `AddressRefused`, as seen by `node:http` callers of `checkedLookup`. */
export const ADDRESS_REFUSED_CODE = 'EWEBHOOKADDRESS';

/** A webhook host that must not be connected to: `reason` is short and human ("private address"). */
export class AddressRefused extends Error {
  readonly code = ADDRESS_REFUSED_CODE;
  readonly reason: string;
  readonly hostname: string;

  /** The refused address, when the refusal is about one (not for "does not resolve"). */
  readonly address: string | undefined;

  constructor(hostname: string, reason: string, options?: ErrorOptions & { address?: string }) {
    const what = options?.address !== undefined && options.address !== hostname ? ` (${options.address})` : '';
    super(`webhook host ${hostname}${what} refused: ${reason}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AddressRefused';
    this.hostname = hostname;
    this.reason = reason;
    this.address = options?.address;
  }
}

/**
 * Cloud instance-metadata and host-agent endpoints. Most also fall in a refused range (link-local,
 * CGNAT, unique-local) but are named so the reason says what they are; Azure's wireserver
 * 168.63.129.16 is in public space, so only this list refuses it.
 */
const METADATA_ADDRESSES = new Set(
  [
    '169.254.169.254', // AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle (IMDS)
    '169.254.170.2', // AWS ECS task metadata
    '100.100.100.200', // Alibaba Cloud
    '168.63.129.16', // Azure wireserver / host agent
    '192.0.0.192', // Oracle Cloud (classic)
    'fd00:ec2::254', // AWS IMDS over IPv6
    'fd00:ec2::23', // AWS Route 53 resolver over IPv6
  ].map((a) => ipaddr.parse(a).toNormalizedString()),
);

/** ipaddr.js range names, mapped to the reason given; any other non-`unicast` range is "special-purpose". */
const RANGE_REASONS: Record<string, string> = {
  unspecified: 'unspecified address', // 0.0.0.0/8, ::/128
  broadcast: 'broadcast address', // 255.255.255.255
  multicast: 'multicast address', // 224.0.0.0/4 (RFC 5771), ff00::/8
  linkLocal: 'link-local address', // 169.254.0.0/16 (RFC 3927), fe80::/10 (RFC 4291)
  loopback: 'loopback address', // 127.0.0.0/8 (RFC 1122), ::1
  carrierGradeNat: 'carrier-grade NAT address', // 100.64.0.0/10 (RFC 6598)
  private: 'private address', // 10/8, 172.16/12, 192.168/16 (RFC 1918)
  reserved: 'reserved address', // documentation (RFC 5737, RFC 3849), benchmarking (RFC 2544), 240/4, ...
  uniqueLocal: 'unique-local address', // fc00::/7 (RFC 4193)
  deprecatedSiteLocal: 'site-local address', // fec0::/10 (RFC 3879)
  rfc6145: 'IPv4-translated address', // ::ffff:0:0/96 (RFC 6145)
  rfc6052: 'NAT64 address', // 64:ff9b::/96 (RFC 6052), 64:ff9b:1::/48 (RFC 8215)
  '6to4': '6to4 address', // 2002::/16 (RFC 3056)
  teredo: 'Teredo address', // 2001::/32 (RFC 4380)
  discard: 'discard-only address', // 100::/64 (RFC 6666)
  benchmarking: 'reserved address', // 2001:2::/48 (RFC 5180)
};

/** IPv6 global unicast space (RFC 4291 §2.4, IANA); anything outside it is not a public host. */
const GLOBAL_UNICAST_V6 = ipaddr.IPv6.parseCIDR('2000::/3');

/** Strip the brackets a URL hostname puts around an IPv6 literal (`[::1]` -> `::1`). */
function unbracket(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

function classify(ip: ipaddr.IPv4 | ipaddr.IPv6): string | undefined {
  if (METADATA_ADDRESSES.has(ip.toNormalizedString())) {
    return 'cloud metadata address';
  }
  if (ip.kind() === 'ipv6') {
    const v6 = ip as ipaddr.IPv6;
    if (v6.isIPv4MappedAddress()) {
      // ::ffff:a.b.c.d (RFC 4291 §2.5.5.2): a dual-stack socket connects to the IPv4 itself.
      const inner = classify(v6.toIPv4Address());
      return inner === undefined ? undefined : `IPv4-mapped ${inner}`;
    }
  }
  // range() is typed narrowly by ipaddr.js's d.ts but returns every name of its SpecialRanges.
  const range: string = ip.range();
  if (range !== 'unicast') {
    const reason = RANGE_REASONS[range] ?? 'special-purpose address';
    const embedded = embeddedIPv4(ip, range);
    if (embedded) {
      const inner = classify(embedded);
      if (inner !== undefined) return `${reason} (embeds ${inner})`;
    }
    return reason;
  }
  if (ip.kind() === 'ipv6' && !(ip as ipaddr.IPv6).match(GLOBAL_UNICAST_V6)) {
    // e.g. deprecated IPv4-compatible ::a.b.c.d (RFC 4291 §2.5.5.1) and unassigned space.
    return 'reserved address';
  }
  return undefined;
}

/**
 * The IPv4 a translation form carries, so the reason can name it (the form is refused anyway):
 * NAT64 64:ff9b::/96 (RFC 6052, last 32 bits), 6to4 2002:AABB:CCDD::/48 (RFC 3056, bits 16-47).
 */
function embeddedIPv4(ip: ipaddr.IPv4 | ipaddr.IPv6, range: string): ipaddr.IPv4 | undefined {
  if (ip.kind() !== 'ipv6') return undefined;
  const parts = (ip as ipaddr.IPv6).parts;
  const words = (hi: number | undefined, lo: number | undefined) =>
    new ipaddr.IPv4([(hi ?? 0) >> 8, (hi ?? 0) & 0xff, (lo ?? 0) >> 8, (lo ?? 0) & 0xff]);
  if (range === 'rfc6052' && parts[0] === 0x64 && parts[1] === 0xff9b && parts[2] === 0) return words(parts[6], parts[7]);
  if (range === 'rfc6145') return words(parts[6], parts[7]);
  if (range === '6to4') return words(parts[1], parts[2]);
  return undefined;
}

/**
 * Why a webhook must not connect to this literal IP address, or undefined when it is a public
 * unicast address.
 *
 * `address` is IPv4 dotted-quad or IPv6 as `dns.lookup` returns it, or a URL hostname with
 * brackets (`[::1]`); a zone id (`fe80::1%eth0`) is allowed. Anything else, including the legacy
 * numeric forms `inet_aton` accepts (`0x7f.1`, `2130706433`, `0177.0.0.1`), is refused as
 * "not an IP address": a WHATWG URL has already canonicalized those.
 *
 * Refused: loopback (127.0.0.0/8, ::1), private (RFC 1918: 10/8, 172.16/12, 192.168/16),
 * link-local (RFC 3927 169.254/16, fe80::/10), carrier-grade NAT (RFC 6598 100.64/10),
 * unique-local (RFC 4193 fc00::/7), unspecified, broadcast, multicast, documentation and other
 * reserved ranges (RFC 5737, RFC 3849, RFC 6890), IPv6 outside 2000::/3, cloud metadata endpoints
 * (169.254.169.254, fd00:ec2::254, 100.100.100.200, 168.63.129.16, ...) and every IPv6 form that
 * embeds an IPv4: IPv4-mapped ::ffff:0:0/96 is judged by its IPv4 ("IPv4-mapped loopback address");
 * NAT64 (RFC 6052, RFC 8215), IPv4-translated (RFC 6145), 6to4 (RFC 3056) and Teredo (RFC 4380) are
 * refused whatever they embed.
 */
export function addressRefusal(address: string): string | undefined {
  const ip = parseStrict(unbracket(address));
  return ip === undefined ? 'not an IP address' : classify(ip);
}

/**
 * Parse only what `net.isIP` accepts, and IPv6 through the WHATWG URL serializer first: ipaddr.js
 * reads the deprecated IPv4-compatible `::a.b.c.d` as IPv4-mapped `::ffff:a.b.c.d`, whereas it is
 * `::a.b:c.d` (RFC 4291 §2.2) to the kernel. The URL serializer writes every IPv6 in hex, so
 * ipaddr.js never sees an embedded dotted quad. A zone id is dropped: it does not change the range.
 */
function parseStrict(text: string): ipaddr.IPv4 | ipaddr.IPv6 | undefined {
  try {
    switch (net.isIP(text)) {
      case 4:
        return ipaddr.IPv4.parse(text);
      case 6: {
        const noZone = text.replace(/%.*$/, '');
        return ipaddr.IPv6.parse(unbracket(new URL(`http://[${noZone}]/`).hostname));
      }
      default:
        return undefined;
    }
  } catch {
    return undefined;
  }
}

/** `localhost` and `*.localhost` (RFC 6761 §6.3) always mean loopback, whatever DNS says. */
function isLoopbackName(hostname: string): boolean {
  const name = hostname.toLowerCase().replace(/\.$/, '');
  return name === 'localhost' || name.endsWith('.localhost');
}

/**
 * Why a subscription URL is refused by the checks that need no DNS, or undefined when it passes.
 *
 * Refused: a scheme other than `https:` (`http:` too when `allowPrivate`); any userinfo
 * (`user:pw@`); any fragment, even an empty `#`; and unless `allowPrivate`, a host that is an IP
 * literal refused by `addressRefusal`, or the loopback names `localhost` / `*.localhost`
 * (RFC 6761). WHATWG URL parsing has already canonicalized numeric hosts (`https://2130706433/`,
 * `https://0x7f.1/` -> `127.0.0.1`; `[::ffff:127.0.0.1]` -> `[::ffff:7f00:1]`). A name's addresses
 * are checked by `resolveChecked` and, at delivery, `checkedLookup`.
 */
export function urlRefusal(url: URL, allowPrivate: boolean): string | undefined {
  const schemes = allowPrivate ? ['https:', 'http:'] : ['https:'];
  if (!schemes.includes(url.protocol)) {
    return allowPrivate ? 'scheme must be http or https' : 'scheme must be https';
  }
  if (url.username !== '' || url.password !== '') return 'credentials in URL';
  // url.hash is '' for a bare trailing '#'; in a serialized URL '#' only ever starts the fragment.
  if (url.href.includes('#')) return 'fragment in URL';
  const host = unbracket(url.hostname);
  if (host === '') return 'no host';
  if (allowPrivate) return undefined;
  if (net.isIP(host) !== 0) return addressRefusal(host);
  if (isLoopbackName(host)) return 'loopback name';
  return undefined;
}

function familyOf(address: string): 4 | 6 {
  return net.isIPv6(address) ? 6 : 4;
}

/** The first refused address of a lookup's answer, as an error; undefined when all pass. */
function firstRefusal(hostname: string, addresses: readonly { address: string }[]): AddressRefused | undefined {
  for (const { address } of addresses) {
    const reason = addressRefusal(address);
    if (reason !== undefined) return new AddressRefused(hostname, reason, { address });
  }
  return undefined;
}

/**
 * A `lookup` for `node:http`/`node:https` `request()` (and `net.connect`) that resolves with
 * `dns.lookup` (all addresses) and, unless `allowPrivate`, fails with an `AddressRefused`
 * (code `EWEBHOOKADDRESS`) when ANY resolved address is refused by `addressRefusal` (loopback,
 * RFC 1918 private, RFC 3927 / fe80::/10 link-local, RFC 6598 CGNAT, RFC 4193 unique-local,
 * cloud metadata, RFC 6052 NAT64, ...). Otherwise it passes the addresses on, honouring
 * `options.all`. The socket connects to exactly an address this returned, so the address checked
 * is the address used: a DNS answer that changes between check and connect (rebinding) cannot
 * slip a private address in.
 *
 * Node skips `lookup` when the host is an IP literal: check those with `urlRefusal` or
 * `resolveChecked` before the request.
 */
export function checkedLookup(allowPrivate: boolean): net.LookupFunction {
  return (hostname, options, callback) => {
    dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) {
        callback(err, options.all ? [] : '', undefined);
        return;
      }
      const first = addresses[0];
      if (first === undefined) {
        const notFound: NodeJS.ErrnoException = new Error(`getaddrinfo ENOTFOUND ${hostname}`);
        notFound.code = 'ENOTFOUND';
        callback(notFound, options.all ? [] : '', undefined);
        return;
      }
      if (!allowPrivate) {
        const refused = firstRefusal(hostname, addresses);
        if (refused !== undefined) {
          callback(refused, options.all ? [] : '', undefined);
          return;
        }
      }
      if (options.all) callback(null, addresses);
      else callback(null, first.address, first.family);
    });
  };
}

/**
 * The addresses a subscription's host resolves to, checked, for use when a subscription is made.
 *
 * Strips URL brackets; an IP literal is judged by `addressRefusal` without DNS, and a name is
 * resolved with `dns.promises.lookup({ all: true })` (the system resolver, as delivery will use).
 * Unless `allowPrivate`, throws `AddressRefused` when any address is refused (loopback, RFC 1918
 * private, RFC 3927 link-local, RFC 6598 CGNAT, RFC 4193 unique-local, cloud metadata, ...); and
 * always throws `AddressRefused` with reason "does not resolve" when the name has no address.
 */
export async function resolveChecked(
  hostname: string,
  allowPrivate: boolean,
): Promise<{ address: string; family: 4 | 6 }[]> {
  const host = unbracket(hostname);
  if (net.isIP(host) !== 0) {
    const reason = allowPrivate ? undefined : addressRefusal(host);
    if (reason !== undefined) throw new AddressRefused(host, reason, { address: host });
    return [{ address: host, family: familyOf(host) }];
  }
  let answers: dns.LookupAddress[];
  try {
    answers = await dns.promises.lookup(host, { all: true });
  } catch (cause) {
    throw new AddressRefused(host, 'does not resolve', { cause });
  }
  if (answers.length === 0) throw new AddressRefused(host, 'does not resolve');
  if (!allowPrivate) {
    const refused = firstRefusal(host, answers);
    if (refused !== undefined) throw refused;
  }
  return answers.map(({ address }) => ({ address, family: familyOf(address) }));
}

/**
 * A GET for fetching a remote document (a client's JWKS) under the same rules as webhook deliveries: https and
 * public addresses only unless `allowPrivate`, the address checked as the socket connects (checkedLookup; an IP
 * literal before), no redirect followed, at most `maxBytes` read. The signature of `fetch` as jose's `customFetch`
 * calls it (url, { headers, signal }).
 */
export function guardedGet(allowPrivate: boolean, maxBytes = 256 * 1024) {
  return (url: string, options: { headers?: Headers; signal?: AbortSignal }): Promise<Response> =>
    new Promise((resolve, reject) => {
      const target = new URL(url);
      const refused = urlRefusal(target, allowPrivate);
      if (refused) return reject(new AddressRefused(target.hostname, refused));
      const client = target.protocol === 'https:' ? https : http;
      const headers: Record<string, string> = {};
      options.headers?.forEach((v, k) => (headers[k] = v));
      const req = client.request(target, { method: 'GET', headers, lookup: checkedLookup(allowPrivate), agent: false, signal: options.signal }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > maxBytes) res.destroy(new Error(`the document is larger than ${maxBytes} bytes`));
          else chunks.push(c);
        });
        res.on('error', reject);
        res.on('end', () => {
          const responseHeaders = new Headers();
          for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') responseHeaders.set(k, v);
          resolve(new Response(Buffer.concat(chunks), { status: res.statusCode ?? 502, headers: responseHeaders }));
        });
      });
      req.on('error', reject);
      req.end();
    });
}
