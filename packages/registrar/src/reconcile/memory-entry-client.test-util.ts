// An in-memory Entry API for unit tests: ids assigned when empty, AlreadyExists for a second
// entry with the same (spiffeID, parentID, selectors), NotFound for unknown ids.
import type { BatchStatus, EntryClient, RegEntry } from '../spire/entry.ts';
import { entryKey } from './plan.ts';

export class MemoryEntryClient implements EntryClient {
  readonly entries = new Map<string, RegEntry>();
  calls = { list: 0, listOfPod: 0, create: 0, update: 0, delete: 0 };
  private next = 1;
  failNextList = false;

  async listEntries(): Promise<RegEntry[]> {
    this.calls.list++;
    if (this.failNextList) {
      this.failNextList = false;
      throw new Error('connection refused');
    }
    return [...this.entries.values()];
  }

  async listEntriesOfPod(podUid: string): Promise<RegEntry[]> {
    this.calls.listOfPod++;
    if (this.failNextList) {
      this.failNextList = false;
      throw new Error('connection refused');
    }
    return [...this.entries.values()].filter((e) => e.selectors.some((s) => s.type === 'k8s' && s.value === `pod-uid:${podUid}`));
  }

  async createEntries(entries: readonly RegEntry[]): Promise<BatchStatus[]> {
    this.calls.create++;
    return entries.map((e) => {
      const k = entryKey(e);
      if ([...this.entries.values()].some((x) => entryKey(x) === k)) return { code: 6, message: 'similar entry already exists' };
      const id = e.id === '' ? `id-${this.next++}` : e.id;
      if (this.entries.has(id)) return { code: 6, message: 'entry id already exists' };
      this.entries.set(id, { ...e, id });
      return { code: 0, message: 'OK' };
    });
  }

  async updateEntries(entries: readonly RegEntry[]): Promise<BatchStatus[]> {
    this.calls.update++;
    return entries.map((e) => {
      if (!this.entries.has(e.id)) return { code: 5, message: 'entry not found' };
      this.entries.set(e.id, e);
      return { code: 0, message: 'OK' };
    });
  }

  async deleteEntries(ids: readonly string[]): Promise<BatchStatus[]> {
    this.calls.delete++;
    return ids.map((id) => (this.entries.delete(id) ? { code: 0, message: 'OK' } : { code: 5, message: 'entry not found' }));
  }

  bySpiffeId(id: string): RegEntry[] {
    return [...this.entries.values()].filter((e) => e.spiffeId === id);
  }
}
