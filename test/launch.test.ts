import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '..');

/** `--max-old-space-size=N` in a command line, or undefined. */
const heapCap = (words: string[]) => {
  const flag = words.find((w) => w.startsWith('--max-old-space-size='));
  return flag === undefined ? undefined : Number(flag.split('=')[1]);
};

describe('how the service is launched', () => {
  it('runs with the same V8 heap cap from npm start, npm run start:prod and the image', async () => {
    const pkg = JSON.parse(await fs.readFile(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    const dockerfile = await fs.readFile(path.join(root, 'Dockerfile'), 'utf8');
    const cmd = /^CMD (\[.*\])$/m.exec(dockerfile);
    expect(cmd, 'the Dockerfile has an exec-form CMD').not.toBeNull();
    const image = JSON.parse(cmd![1]!) as string[];
    expect(image[0]).toBe('node');
    expect(image.at(-1)).toBe('dist/server.js');

    const caps = {
      start: heapCap(pkg.scripts.start!.split(/\s+/)),
      startProd: heapCap(pkg.scripts['start:prod']!.split(/\s+/)),
      image: heapCap(image),
    };
    // Without a cap Node sizes the heap from the host (4 GiB here), and V8 lets garbage grow to 4x the live heap.
    expect(caps.start).toBeGreaterThanOrEqual(512);
    expect(caps.start).toBeLessThanOrEqual(2048);
    expect(caps).toEqual({ start: caps.start, startProd: caps.start, image: caps.start });
  });
});
