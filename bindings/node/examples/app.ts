// app.ts -- the binding from TypeScript, as the app (Bun + TypeScript) would
// use it; test/typescript.test.mjs type-checks it with tsc --noEmit --strict.
import { open, openAsync, Filter, ResonanceError, type Db, type SearchResult, type Hit } from '../index.js';

export interface SearchResultApp {
  id: string;
  score: number;
  content: string;
  title?: string;
  date?: string;
}

export async function searchByVector(db: Db, query: Float32Array, limit = 5): Promise<SearchResultApp[]> {
  const r: SearchResult = await db.search(query, { k: limit, minScore: 0 });
  return (r.hits ?? []).map((h: Hit) => ({
    id: h.id,
    score: h.score,
    title: h.title ?? undefined,
    content: h.meta ? `[Hollow Node: ${JSON.parse(h.meta).source ?? 'no source'}]` : '',
    date: h.date ?? undefined,
  }));
}

export async function demo(path: string): Promise<void> {
  const db = open(path, { create: true, dim: 4, tiers: ['i8'] });
  db.upsert([{ id: 'a', embedding: new Float32Array([1, 0, 0, 0]), meta: { source: 'a.md' } }]);
  db.upsert({ ids: ['b', 'c'], vectors: new Float32Array(8).fill(0.5), titles: ['B', null] });
  const one = db.searchSync([1, 0, 0, 0], { k: 2, hydrate: false });
  const first: string | undefined = one.ids[0];
  const s: number = one.scores[0] ?? 0;
  const batch = await db.searchBatch([new Float32Array(4).fill(1), [0, 1, 0, 0]], {
    k: 3,
    filter: Filter.parse({ must: [{ key: 'type', match: { value: 'note' } }] }).or(Filter.ids(['a'])),
    tier: 'i8',
  });
  const counts: Uint32Array = batch.counts;
  const hitsOfQuery1: string[] = batch.ids[1] ?? [];
  const like = await db.searchLike('a', { k: 1 });
  const node = db.get('a', { embedding: true });
  const emb: Float32Array | null | undefined = node?.embedding;
  const stats = db.stats();
  const rows: number = stats.arenaRows;
  try {
    db.searchSync(new Float32Array(3));
  } catch (e) {
    if (e instanceof ResonanceError && e.code === 'E_DIM') console.log(e.message);
  }
  // @ts-expect-error: tier names are checked
  db.searchSync([1, 0, 0, 0], { tier: 'f8' });
  // @ts-expect-error: a node needs an id
  db.upsert({ title: 'no id' });
  const other = await openAsync(path, { readonly: true });
  await other.close();
  console.log(first, s, counts, hitsOfQuery1, like.count, emb, rows, await searchByVector(db, new Float32Array(4).fill(1)));
  await db.close();
}
