// Fixed-size pages of resume-buffer rows, shared by every session of the process.
//
// Why pages in shared chunks: a session's own typed arrays, grown by doubling, made every
// busy new session allocate a fresh backing store outside the V8 heap each time its buffer
// doubled. Under fan-out load (thousands of sessions filling their buffers at once) that
// external memory grew by megabytes a second, and V8 answers external growth with full
// (mark-compact) collections: pauses of 5-25 ms every second or so, the largest part of the
// gateway's p99. Here a session holds a short list of page numbers; a page is 32 rows in a
// chunk of 512 pages that never moves. A buffer grows by one page and, once full, reuses
// its own oldest page, so a session in steady state allocates nothing.
//
// Chunks go back to the system when they empty, so memory falls after the sessions of a
// reconnect storm expire: pages are taken from the lowest chunk that has room, which lets
// the highest ones drain, and an empty chunk is kept while it is the only free room, so a
// session cycling one page at a chunk boundary does not allocate and free it over and over.

/** log2 of the rows a page holds: row arithmetic is shifts and masks. */
export const ROW_SHIFT = 5;
export const ROWS_PER_PAGE = 1 << ROW_SHIFT;
/** uint32 words a row takes: kind, three ids as (hi, lo) halves, unread and mention counts. */
export const WORDS_PER_ROW = 9;
const PAGES_PER_CHUNK = 512;
const CHUNK_SHIFT = 9;
const CHUNK_WORDS = PAGES_PER_CHUNK * ROWS_PER_PAGE * WORDS_PER_ROW;
/** Bytes one chunk takes. */
export const CHUNK_BYTES = CHUNK_WORDS * 4;

const ABSENT = new Uint32Array(0);

export class ResumePages {
  private readonly chunks: Uint32Array[] = [];
  /** Per chunk: its free pages (indexes within the chunk), a stack. */
  private readonly freeLists: Uint16Array[] = [];
  private readonly freeCounts: number[] = [];
  /** Chunks given back, their slots free for the next chunk made. */
  private readonly absent: number[] = [];
  /** No chunk below this one has a free page. */
  private lowestWithRoom = 0;
  private freePages = 0;
  private used = 0;

  /** Pages handed out and not released. */
  get pagesInUse(): number {
    return this.used;
  }

  /** Bytes of the chunks held (in use or not). */
  get byteLength(): number {
    return (this.chunks.length - this.absent.length) * CHUNK_BYTES;
  }

  /** A page, its rows unspecified. */
  alloc(): number {
    let c = this.lowestWithRoom;
    // A chunk given back has no free pages: skipped like a full one.
    while (c < this.chunks.length && this.freeCounts[c] === 0) c++;
    // Every chunk is full: the one made now is the only one with room.
    if (c === this.chunks.length) c = this.create();
    this.lowestWithRoom = c;
    this.freePages--;
    this.used++;
    return (c << CHUNK_SHIFT) | this.freeLists[c][--this.freeCounts[c]];
  }

  release(page: number): void {
    const c = page >>> CHUNK_SHIFT;
    this.freeLists[c][this.freeCounts[c]++] = page & (PAGES_PER_CHUNK - 1);
    this.freePages++;
    this.used--;
    if (c < this.lowestWithRoom) this.lowestWithRoom = c;
    // Emptied, and other chunks still have a chunk's worth of room: give it back.
    if (this.freeCounts[c] === PAGES_PER_CHUNK && this.freePages >= 2 * PAGES_PER_CHUNK) {
      this.chunks[c] = ABSENT;
      this.freeCounts[c] = 0;
      this.freePages -= PAGES_PER_CHUNK;
      this.absent.push(c);
    }
  }

  /** The chunk holding `page`. */
  words(page: number): Uint32Array {
    return this.chunks[page >>> CHUNK_SHIFT];
  }

  /** First word, in words(page), of row `row` of `page`. */
  at(page: number, row: number): number {
    return (((page & (PAGES_PER_CHUNK - 1)) << ROW_SHIFT) + row) * WORDS_PER_ROW;
  }

  /** Makes a chunk with every page free, in the slot of one given back if any; returns its number. */
  private create(): number {
    const c = this.absent.pop() ?? this.chunks.length;
    if (c === this.chunks.length) {
      this.chunks.push(ABSENT);
      this.freeLists.push(new Uint16Array(PAGES_PER_CHUNK));
      this.freeCounts.push(0);
    }
    const free = this.freeLists[c];
    // Handed out from the top of the stack: page 0 first.
    for (let i = 0; i < PAGES_PER_CHUNK; i++) free[i] = PAGES_PER_CHUNK - 1 - i;
    this.chunks[c] = new Uint32Array(CHUNK_WORDS);
    this.freeCounts[c] = PAGES_PER_CHUNK;
    this.freePages += PAGES_PER_CHUNK;
    return c;
  }
}
