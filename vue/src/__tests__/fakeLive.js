// The API's two GETs for unit tests: /api/ballot answers at once; each GET /api/live waits until
// the test delivers the document it has built with emit (or a failure after emit('error')).
import { flushPromises } from '@vue/test-utils';

export class FakeLive {
  static instances = [];

  constructor(ballot = null) {
    this.ballot = ballot;
    this.doc = {};
    this.fail = false;
    this.pending = [];
    this.urls = [];
    this.fetch = (url) => this.#fetch(url);
    FakeLive.instances.push(this);
  }

  async #fetch(url) {
    this.urls.push(url);
    if (url === '/api/ballot') {
      return this.ballot ? { ok: true, status: 200, json: async () => this.ballot } : { ok: false, status: 404, json: async () => ({}) };
    }
    return new Promise((resolve) => this.pending.push(resolve));
  }

  /** Sets a part of the next document ('logs', 'results', 'status'); 'error' fails the next poll. */
  emit(name, data) {
    if (name === 'error') this.fail = true;
    else this.doc[name] = data;
  }

  /** Answers the poll waiting now, then lets the page take it in. */
  async deliver() {
    await flushPromises();
    const resolve = this.pending.shift();
    if (!resolve) throw new Error('no poll of /api/live is waiting');
    const doc = structuredClone(this.doc);
    resolve(this.fail ? { ok: false, status: 502, json: async () => ({}) } : { ok: true, status: 200, json: async () => doc });
    this.fail = false;
    await flushPromises();
  }

  static latest() {
    return FakeLive.instances.at(-1);
  }
}
