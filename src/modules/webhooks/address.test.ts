import type { LookupAddress } from 'node:dns';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AddressRefused, addressRefusal, checkedLookup, resolveChecked, urlRefusal } from './address.js';

// Unit tests of the address check only: nothing here opens a connection. The only DNS use is
// resolving IP literals (answered without a query) and `localhost` (answered from /etc/hosts).

const refused: [string, RegExp][] = [
  // loopback
  ['127.0.0.1', /^loopback address$/],
  ['127.1.2.3', /^loopback address$/],
  ['127.255.255.255', /^loopback address$/],
  ['::1', /^loopback address$/],
  ['[::1]', /^loopback address$/],
  ['::ffff:127.0.0.1', /^IPv4-mapped loopback address$/],
  ['::ffff:7f00:1', /^IPv4-mapped loopback address$/],
  ['[::ffff:7f00:1]', /^IPv4-mapped loopback address$/],
  // private (RFC 1918)
  ['10.0.0.0', /^private address$/],
  ['10.0.0.1', /^private address$/],
  ['10.255.255.255', /^private address$/],
  ['172.16.0.0', /^private address$/],
  ['172.20.1.1', /^private address$/],
  ['172.31.255.255', /^private address$/],
  ['192.168.0.1', /^private address$/],
  ['192.168.255.255', /^private address$/],
  ['::ffff:10.1.2.3', /^IPv4-mapped private address$/],
  ['::ffff:c0a8:101', /^IPv4-mapped private address$/],
  // link-local (RFC 3927, RFC 4291)
  ['169.254.0.1', /^link-local address$/],
  ['169.254.255.254', /^link-local address$/],
  ['fe80::1', /^link-local address$/],
  ['fe80::1%eth0', /^link-local address$/],
  ['febf:ffff::1', /^link-local address$/],
  // cloud metadata
  ['169.254.169.254', /^cloud metadata address$/],
  ['fd00:ec2::254', /^cloud metadata address$/],
  ['[fd00:ec2::254]', /^cloud metadata address$/],
  ['fd00:0ec2:0:0:0:0:0:254', /^cloud metadata address$/],
  ['100.100.100.200', /^cloud metadata address$/],
  ['168.63.129.16', /^cloud metadata address$/],
  ['::ffff:169.254.169.254', /^IPv4-mapped cloud metadata address$/],
  ['::ffff:a83f:8110', /^IPv4-mapped cloud metadata address$/], // 168.63.129.16
  // unique local (RFC 4193)
  ['fc00::1', /^unique-local address$/],
  ['fd12:3456:789a::1', /^unique-local address$/],
  ['fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', /^unique-local address$/],
  // carrier-grade NAT (RFC 6598)
  ['100.64.0.0', /^carrier-grade NAT address$/],
  ['100.100.1.1', /^carrier-grade NAT address$/],
  ['100.127.255.255', /^carrier-grade NAT address$/],
  // unspecified
  ['0.0.0.0', /^unspecified address$/],
  ['0.1.2.3', /^unspecified address$/],
  ['::', /^unspecified address$/],
  ['::ffff:0.0.0.0', /^IPv4-mapped unspecified address$/],
  // multicast, broadcast
  ['224.0.0.1', /^multicast address$/],
  ['239.255.255.250', /^multicast address$/],
  ['ff02::1', /^multicast address$/],
  ['ff05::1:3', /^multicast address$/],
  ['255.255.255.255', /^broadcast address$/],
  // documentation, benchmarking, future use (RFC 5737, RFC 2544, RFC 3849)
  ['192.0.2.1', /^reserved address$/],
  ['198.51.100.7', /^reserved address$/],
  ['203.0.113.9', /^reserved address$/],
  ['198.18.0.1', /^reserved address$/],
  ['240.0.0.1', /^reserved address$/],
  ['2001:db8::1', /^reserved address$/],
  // IPv6 forms that embed an IPv4: refused whatever they carry
  ['2002:7f00:1::', /^6to4 address \(embeds loopback address\)$/],
  ['2002:a00:1::1', /^6to4 address \(embeds private address\)$/],
  ['2002:c0a8:101::1', /^6to4 address \(embeds private address\)$/],
  ['2002:808:808::1', /^6to4 address$/],
  ['64:ff9b::7f00:1', /^NAT64 address \(embeds loopback address\)$/],
  ['64:ff9b::127.0.0.1', /^NAT64 address \(embeds loopback address\)$/],
  ['64:ff9b::a9fe:a9fe', /^NAT64 address \(embeds cloud metadata address\)$/],
  ['64:ff9b::808:808', /^NAT64 address$/],
  ['64:ff9b:1::a00:1', /^NAT64 address$/],
  ['::ffff:0:7f00:1', /^IPv4-translated address \(embeds loopback address\)$/],
  ['2001:0:4136:e378:8000:63bf:3fff:fdd2', /^Teredo address$/],
  // IPv6 outside global unicast 2000::/3, e.g. deprecated IPv4-compatible
  ['::7f00:1', /^reserved address$/],
  ['::127.0.0.1', /^reserved address$/],
  ['::8.8.8.8', /^reserved address$/], // not ::ffff:8.8.8.8, which ipaddr.js alone would read it as
  ['100::1', /^discard-only address$/],
  ['fec0::1', /^site-local address$/],
  // not an IP at all, including legacy inet_aton spellings
  ['example.com', /^not an IP address$/],
  ['localhost', /^not an IP address$/],
  ['', /^not an IP address$/],
  ['2130706433', /^not an IP address$/],
  ['0x7f.1', /^not an IP address$/],
  ['0177.0.0.1', /^not an IP address$/],
  ['127.1', /^not an IP address$/],
  ['256.0.0.1', /^not an IP address$/],
  ['::1]', /^not an IP address$/],
];

const publicAddresses = [
  '8.8.8.8',
  '1.1.1.1',
  '93.184.216.34',
  '172.15.255.255',
  '172.32.0.1',
  '100.63.255.255',
  '100.128.0.1',
  '169.253.255.255',
  '169.255.0.1',
  '11.0.0.1',
  '192.169.0.1',
  '2606:4700:4700::1111',
  '[2606:4700:4700::1111]',
  '2001:4860:4860::8888',
  '::ffff:8.8.8.8',
];

describe('addressRefusal', () => {
  it.each(refused)('refuses %s', (address, reason) => {
    expect(addressRefusal(address)).toMatch(reason);
  });

  it.each(publicAddresses)('allows public unicast %s', (address) => {
    expect(addressRefusal(address)).toBeUndefined();
  });

  const octet = fc.integer({ min: 0, max: 255 });
  const dotted = ([a, b, c, d]: number[]) => `${a}.${b}.${c}.${d}`;
  const hexMapped = ([a = 0, b = 0, c = 0, d = 0]: number[]) =>
    `::ffff:${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  const refusedIPv4 = fc.oneof(
    fc.tuple(fc.constant(10), octet, octet, octet),
    fc.tuple(fc.constant(192), fc.constant(168), octet, octet),
    fc.tuple(fc.constant(127), octet, octet, octet),
    fc.tuple(fc.constant(169), fc.constant(254), octet, octet),
  );

  it('refuses every IPv4 in 10/8, 192.168/16, 127/8, 169.254/16, and its IPv4-mapped IPv6 forms', () => {
    fc.assert(
      fc.property(refusedIPv4, (octets) => {
        const v4 = dotted(octets);
        expect(addressRefusal(v4)).toBeDefined();
        expect(addressRefusal(`::ffff:${v4}`)).toMatch(/^IPv4-mapped /);
        expect(addressRefusal(hexMapped(octets))).toMatch(/^IPv4-mapped /);
        expect(addressRefusal(`[::ffff:${v4}]`)).toMatch(/^IPv4-mapped /);
        // As a URL host, whatever spelling WHATWG canonicalizes it from.
        expect(urlRefusal(new URL(`https://${v4}/`), false)).toBeDefined();
        expect(urlRefusal(new URL(`https://[::ffff:${v4}]/`), false)).toMatch(/^IPv4-mapped /);
        const n = octets.reduce((acc, o) => acc * 256 + o, 0);
        expect(urlRefusal(new URL(`https://${n}/`), false)).toBeDefined();
      }),
      { numRuns: 500 },
    );
  });
});

describe('urlRefusal', () => {
  const production: [string, RegExp][] = [
    ['http://example.com/hook', /https/],
    ['ftp://example.com/hook', /https/],
    ['https://127.0.0.1/', /^loopback address$/],
    ['https://127.0.0.1:8443/hook', /^loopback address$/],
    ['https://[::1]/', /^loopback address$/],
    ['https://localhost/', /^loopback name$/],
    ['https://LOCALHOST./', /^loopback name$/],
    ['https://api.localhost/', /^loopback name$/],
    ['https://[::ffff:127.0.0.1]/', /^IPv4-mapped loopback address$/],
    ['https://2130706433/', /^loopback address$/],
    ['https://0x7f.1/', /^loopback address$/],
    ['https://0177.0.0.1/', /^loopback address$/],
    ['https://127.1/', /^loopback address$/],
    ['https://10.0.0.5/hook', /^private address$/],
    ['https://169.254.169.254/latest/meta-data/', /^cloud metadata address$/],
    ['https://[fd00:ec2::254]/', /^cloud metadata address$/],
    ['https://168.63.129.16/', /^cloud metadata address$/],
    ['https://[fe80::1]/', /^link-local address$/],
    ['https://0.0.0.0/', /^unspecified address$/],
    ['https://[64:ff9b::7f00:1]/', /^NAT64 address/],
  ];

  it.each(production)('refuses %s in production', (url, reason) => {
    expect(urlRefusal(new URL(url), false)).toMatch(reason);
  });

  it.each(production.filter(([url]) => !url.startsWith('ftp:')))('allows %s with WEBHOOK_ALLOW_PRIVATE_URLS', (url) => {
    expect(urlRefusal(new URL(url), true)).toBeUndefined();
  });

  it('refuses schemes other than http and https even with WEBHOOK_ALLOW_PRIVATE_URLS', () => {
    expect(urlRefusal(new URL('ftp://127.0.0.1/'), true)).toMatch(/scheme/);
    expect(urlRefusal(new URL('file:///etc/passwd'), true)).toMatch(/scheme/);
  });

  it.each([
    'https://example.com/hook',
    'https://example.com:8443/hooks/1?x=1',
    'https://8.8.8.8/',
    'https://[2606:4700:4700::1111]/',
    'https://172.32.0.1/',
  ])('allows %s in production', (url) => {
    expect(urlRefusal(new URL(url), false)).toBeUndefined();
  });

  it.each([
    ['https://user:pw@example.com/', /credentials/],
    ['https://user@example.com/', /credentials/],
    ['https://:pw@example.com/', /credentials/],
    ['https://example.com/hook#frag', /fragment/],
    ['https://example.com/hook#', /fragment/],
  ])('refuses %s even with WEBHOOK_ALLOW_PRIVATE_URLS', (url, reason) => {
    expect(urlRefusal(new URL(url), false)).toMatch(reason);
    expect(urlRefusal(new URL(url), true)).toMatch(reason);
  });

  it('does not mistake an encoded # in the path or query for a fragment', () => {
    expect(urlRefusal(new URL('https://example.com/a%23b?c=%23'), false)).toBeUndefined();
  });
});

type LookupResult = { err: NodeJS.ErrnoException | null; address: string | LookupAddress[]; family?: number };

function lookup(allowPrivate: boolean, hostname: string, all: boolean): Promise<LookupResult> {
  return new Promise((resolve) => {
    checkedLookup(allowPrivate)(hostname, { all }, (err, address, family) => resolve({ err, address, family }));
  });
}

describe('checkedLookup (literals and localhost only: resolve, never connect)', () => {
  it.each(['localhost', '127.0.0.1', '::1', '10.1.2.3', '169.254.169.254'])(
    'fails %s with EWEBHOOKADDRESS in production, for all: true and false',
    async (host) => {
      for (const all of [true, false]) {
        const { err } = await lookup(false, host, all);
        expect(err).toBeInstanceOf(AddressRefused);
        expect(err?.code).toBe('EWEBHOOKADDRESS');
        expect(err?.message).toContain('refused');
      }
    },
  );

  it('names the reason in the error', async () => {
    const { err } = await lookup(false, '169.254.169.254', false);
    expect((err as AddressRefused).reason).toBe('cloud metadata address');
    expect(err?.message).toMatch(/cloud metadata address/);
  });

  it('passes the addresses on with WEBHOOK_ALLOW_PRIVATE_URLS, honouring options.all', async () => {
    const one = await lookup(true, '127.0.0.1', false);
    expect(one).toEqual({ err: null, address: '127.0.0.1', family: 4 });
    const many = await lookup(true, 'localhost', true);
    expect(many.err).toBeNull();
    expect(Array.isArray(many.address)).toBe(true);
    const addresses = many.address as LookupAddress[];
    expect(addresses.length).toBeGreaterThan(0);
    for (const a of addresses) expect(['127.0.0.1', '::1']).toContain(a.address);
  });

  it('passes a public literal on in production', async () => {
    expect(await lookup(false, '8.8.8.8', false)).toEqual({ err: null, address: '8.8.8.8', family: 4 });
    expect(await lookup(false, '2606:4700:4700::1111', true)).toEqual({
      err: null,
      address: [{ address: '2606:4700:4700::1111', family: 6 }],
      family: undefined,
    });
  });
});

describe('resolveChecked (literals and localhost only: resolve, never connect)', () => {
  it('refuses localhost in production', async () => {
    const err: unknown = await resolveChecked('localhost', false).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AddressRefused);
    expect((err as AddressRefused).reason).toBe('loopback address');
    expect((err as AddressRefused).code).toBe('EWEBHOOKADDRESS');
  });

  it.each([
    ['127.0.0.1', 'loopback address'],
    ['[::1]', 'loopback address'],
    ['::ffff:7f00:1', 'IPv4-mapped loopback address'],
    ['[fd00:ec2::254]', 'cloud metadata address'],
    ['192.168.1.1', 'private address'],
  ])('refuses literal %s in production without DNS', async (host, reason) => {
    await expect(resolveChecked(host, false)).rejects.toMatchObject({ name: 'AddressRefused', reason });
  });

  it('resolves literals and localhost with WEBHOOK_ALLOW_PRIVATE_URLS', async () => {
    await expect(resolveChecked('127.0.0.1', true)).resolves.toEqual([{ address: '127.0.0.1', family: 4 }]);
    await expect(resolveChecked('[::1]', true)).resolves.toEqual([{ address: '::1', family: 6 }]);
    const local = await resolveChecked('localhost', true);
    expect(local.length).toBeGreaterThan(0);
    for (const a of local) expect(['127.0.0.1', '::1']).toContain(a.address);
  });

  it('passes a public literal in production', async () => {
    await expect(resolveChecked('8.8.8.8', false)).resolves.toEqual([{ address: '8.8.8.8', family: 4 }]);
    await expect(resolveChecked('[2606:4700:4700::1111]', false)).resolves.toEqual([
      { address: '2606:4700:4700::1111', family: 6 },
    ]);
  });

});
