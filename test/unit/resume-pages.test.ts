// The shared pages of the resume buffers against a plain model: the set of pages handed out.
// A page is never handed out twice, its rows keep what was written until it is released, and
// memory goes back once the pages are released.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CHUNK_BYTES, ResumePages, ROWS_PER_PAGE, WORDS_PER_ROW } from '../../src/gateway/resume-pages.js';

/** Writes `mark` into every word of `page`. */
function fill(pages: ResumePages, page: number, mark: number): void {
  const words = pages.words(page);
  words.fill(mark, pages.at(page, 0), pages.at(page, 0) + ROWS_PER_PAGE * WORDS_PER_ROW);
}

function holds(pages: ResumePages, page: number, mark: number): boolean {
  const words = pages.words(page);
  for (let row = 0; row < ROWS_PER_PAGE; row++) for (let w = 0; w < WORDS_PER_ROW; w++) if (words[pages.at(page, row) + w] !== mark) return false;
  return true;
}

describe('resume pages', () => {
  it('hands out each page once, keeps its rows until released, and gives memory back', () => {
    // Runs of allocations and releases large enough to cross chunks (512 pages each).
    const step = fc.oneof(fc.record({ alloc: fc.integer({ min: 1, max: 900 }) }), fc.record({ release: fc.double({ min: 0, max: 1, noNaN: true }) }));
    fc.assert(
      fc.property(fc.array(step, { maxLength: 12 }), (steps) => {
        const pages = new ResumePages();
        const live = new Map<number, number>();
        let mark = 1;
        for (const s of steps) {
          if ('alloc' in s) {
            for (let i = 0; i < s.alloc; i++) {
              const page = pages.alloc();
              expect(live.has(page)).toBe(false);
              fill(pages, page, mark);
              live.set(page, mark++);
            }
          } else {
            // Releases that share of the live pages, spread over them.
            const all = [...live.keys()];
            for (let i = 0; i < all.length; i++) {
              if ((i * 0.618) % 1 >= s.release) continue;
              pages.release(all[i]);
              live.delete(all[i]);
            }
          }
          expect(pages.pagesInUse).toBe(live.size);
          for (const [page, m] of live) expect(holds(pages, page, m)).toBe(true);
        }
        for (const page of live.keys()) pages.release(page);
        expect(pages.pagesInUse).toBe(0);
        expect(pages.byteLength).toBeLessThanOrEqual(CHUNK_BYTES);
      }),
      { numRuns: 60 },
    );
  });

  it('keeps an emptied chunk while it is the only free room, so one page cycling at its edge costs no allocation', () => {
    const pages = new ResumePages();
    const first = Array.from({ length: 512 }, () => pages.alloc());
    expect(pages.byteLength).toBe(CHUNK_BYTES);
    const edge = pages.alloc();
    expect(pages.byteLength).toBe(2 * CHUNK_BYTES);
    pages.release(edge);
    for (let i = 0; i < 100; i++) {
      const page = pages.alloc();
      expect(page).toBe(edge);
      pages.release(page);
    }
    expect(pages.byteLength).toBe(2 * CHUNK_BYTES);
    // The first chunk empties while the second has room: it goes back.
    for (const page of first) pages.release(page);
    expect(pages.byteLength).toBe(CHUNK_BYTES);
  });
});
