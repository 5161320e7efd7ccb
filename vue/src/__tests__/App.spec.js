import { flushPromises, mount } from '@vue/test-utils';
import { beforeEach, describe, expect, it } from 'vitest';

import App from '../App.vue';
import { FakeEventSource } from './fakeEventSource.js';

/** A fetch answering GET /api/ballot with ballot, or 404 (no ballot) when it is null. */
function ballotFetch(ballot) {
  return async (url) => {
    expect(url).toBe('/api/ballot');
    return ballot ? { ok: true, status: 200, json: async () => ballot } : { ok: false, status: 404, json: async () => ({}) };
  };
}

function mountApp(ballot = null) {
  return mount(App, { props: { eventSource: FakeEventSource, fetch: ballotFetch(ballot) } });
}

const ballot = {
  bands: [
    { name: 'Alux Nahual', albums: [{ album: 'Conquista', year: 1982 }, { album: 'Alto al Fuego', year: 1987 }] },
    { name: 'Viernes Verde', albums: [{ album: 'P.M.', year: 2017 }] },
  ],
};

function log(i) {
  return {
    id: `vote-${i}`,
    name: 'Alux Nahual',
    album: 'Conquista',
    year: 1982,
    rank: 1 + (i % 10),
    route: i % 2 ? 'grpc' : 'wasm',
    accepted_at: `2026-11-23T12:00:${String(i).padStart(2, '0')}.000Z`,
    counted_at: `2026-11-23T12:00:${String(i).padStart(2, '0')}.050Z`,
  };
}

describe('App', () => {
  beforeEach(() => {
    FakeEventSource.instances = [];
  });

  it('shows the streamed logs newest at the bottom, and both charts of the counts', async () => {
    const wrapper = mountApp();
    const source = FakeEventSource.latest();
    expect(source.url).toBe('/api/stream');
    source.emit('open');
    // The API sends the newest first.
    source.emit('logs', Array.from({ length: 20 }, (_, i) => log(39 - i)));
    source.emit('results', {
      total: 7,
      bands: [
        { band: 'Alux Nahual', votes: 5 },
        { band: 'Bohemia Suburbana', votes: 2 },
      ],
      albums: [
        { band: 'Alux Nahual', album: 'Conquista', votes: 5 },
        { band: 'Bohemia Suburbana', album: 'Sombras en el Jardín', votes: 2 },
      ],
    });
    await wrapper.vm.$nextTick();

    const lines = wrapper.findAll('[role="log"] li').map((li) => li.text());
    expect(lines).toHaveLength(20);
    expect(lines[0]).toBe('12:00:20 wasm Alux Nahual — Conquista (1982) rank 1  vote-20');
    expect(lines[19]).toBe('12:00:39 grpc Alux Nahual — Conquista (1982) rank 10  vote-39');
    expect(wrapper.get('[data-testid="stream-state"]').text()).toBe('live');
    expect(wrapper.get('[data-testid="total"]').text()).toBe('7 votes counted');

    const [bands, albums] = wrapper.findAll('figure');
    expect(bands.attributes('aria-label')).toBe('Votes per band');
    expect(bands.findAll('li').map((li) => [li.attributes('data-label'), li.attributes('data-value')])).toEqual([
      ['Alux Nahual', '5'],
      ['Bohemia Suburbana', '2'],
    ]);
    expect(albums.attributes('aria-label')).toBe('Votes per album');
    expect(albums.findAll('li').map((li) => li.attributes('data-label'))).toEqual([
      'Conquista (Alux Nahual)',
      'Sombras en el Jardín (Bohemia Suburbana)',
    ]);
  });

  it('keeps the charts bounded: the top rows, one bar for the rest, and applies changes', async () => {
    const wrapper = mountApp();
    const source = FakeEventSource.latest();
    source.emit('open');
    source.emit('results', {
      total: 60010,
      bands: [{ band: 'Alux Nahual', votes: 7 }, { band: 'Bohemia Suburbana', votes: 3 }],
      albums: [{ band: 'Alux Nahual', album: 'Conquista', votes: 7 }],
      otherBands: { count: 60000, votes: 60000 },
      otherAlbums: { count: 60001, votes: 60003 },
    });
    await wrapper.vm.$nextTick();
    const bars = (figure) => figure.findAll('li').map((li) => [li.attributes('data-label'), li.attributes('data-value')]);
    let [bands, albums] = wrapper.findAll('figure');
    expect(bars(bands)).toEqual([
      ['Alux Nahual', '7'],
      ['Bohemia Suburbana', '3'],
      ['60,000 other bands', '60000'],
    ]);
    expect(bars(albums)).toEqual([
      ['Conquista (Alux Nahual)', '7'],
      ['60,001 other albums', '60003'],
    ]);

    // A change: Bohemia Suburbana passes Alux Nahual, Viernes Verde enters the top, Alux leaves it.
    source.emit('results-delta', {
      total: 60020,
      bands: { set: [{ band: 'Bohemia Suburbana', votes: 9 }, { band: 'Viernes Verde', votes: 8 }], gone: [{ band: 'Alux Nahual' }] },
      albums: { set: [], gone: [] },
      otherBands: { count: 60001, votes: 60007 },
      otherAlbums: { count: 60001, votes: 60013 },
    });
    await wrapper.vm.$nextTick();
    [bands, albums] = wrapper.findAll('figure');
    expect(bars(bands)).toEqual([
      ['Bohemia Suburbana', '9'],
      ['Viernes Verde', '8'],
      ['60,001 other bands', '60007'],
    ]);
    expect(bars(albums)).toEqual([
      ['Conquista (Alux Nahual)', '7'],
      ['60,001 other albums', '60013'],
    ]);
    expect(wrapper.get('[data-testid="total"]').text()).toBe('60,020 votes counted');
  });

  it('says when the stream is reconnecting and when a store is down', async () => {
    const wrapper = mountApp();
    const source = FakeEventSource.latest();
    source.emit('open');
    source.emit('status', { mongo: 'down', redis: 'up' });
    source.emit('error');
    await wrapper.vm.$nextTick();

    expect(wrapper.get('[data-testid="stream-state"]').text()).toBe('reconnecting…');
    const alerts = wrapper.findAll('[role="alert"]').map((a) => a.text());
    expect(alerts).toEqual(['The vote log store is unreachable; showing the last logs received.']);
  });

  it('shows the ballot bands and albums without votes as zero bars, after the counted ones', async () => {
    const wrapper = mountApp(ballot);
    await flushPromises();
    const source = FakeEventSource.latest();
    source.emit('open');
    const bars = (figure) => figure.findAll('li').map((li) => [li.attributes('data-label'), li.attributes('data-value')]);
    // Before any counts: the whole ballot at zero.
    let [bands, albums] = wrapper.findAll('figure');
    expect(bars(bands)).toEqual([
      ['Alux Nahual', '0'],
      ['Viernes Verde', '0'],
    ]);

    // An old ballot's band is counted like any other; the ballot's names without votes follow.
    source.emit('results', {
      total: 5,
      bands: [{ band: 'Alux Nahual', votes: 3 }, { band: 'Old Band', votes: 2 }],
      albums: [{ band: 'Alux Nahual', album: 'Conquista', votes: 3 }, { band: 'Old Band', album: 'Old Album', votes: 2 }],
      otherBands: { count: 0, votes: 0 },
      otherAlbums: { count: 0, votes: 0 },
    });
    await wrapper.vm.$nextTick();
    [bands, albums] = wrapper.findAll('figure');
    expect(bars(bands)).toEqual([
      ['Alux Nahual', '3'],
      ['Old Band', '2'],
      ['Viernes Verde', '0'],
    ]);
    expect(bars(albums)).toEqual([
      ['Conquista (Alux Nahual)', '3'],
      ['Old Album (Old Band)', '2'],
      ['Alto al Fuego (Alux Nahual)', '0'],
      ['P.M. (Viernes Verde)', '0'],
    ]);

    // With a rest, an unlisted ballot band may be counted in it: no zero bar claims otherwise.
    source.emit('results', {
      total: 60005,
      bands: [{ band: 'Alux Nahual', votes: 3 }],
      albums: [{ band: 'Alux Nahual', album: 'Conquista', votes: 3 }],
      otherBands: { count: 60000, votes: 60002 },
      otherAlbums: { count: 60001, votes: 60002 },
    });
    await wrapper.vm.$nextTick();
    [bands] = wrapper.findAll('figure');
    expect(bars(bands)).toEqual([
      ['Alux Nahual', '3'],
      ['60,000 other bands', '60002'],
    ]);
  });

  it('shows the counted names alone when the API has no ballot', async () => {
    const wrapper = mountApp(null);
    await flushPromises();
    const source = FakeEventSource.latest();
    source.emit('open');
    source.emit('results', {
      total: 1,
      bands: [{ band: 'Alux Nahual', votes: 1 }],
      albums: [{ band: 'Alux Nahual', album: 'Conquista', votes: 1 }],
      otherBands: { count: 0, votes: 0 },
      otherAlbums: { count: 0, votes: 0 },
    });
    await wrapper.vm.$nextTick();
    const [bands] = wrapper.findAll('figure');
    expect(bands.findAll('li').map((li) => li.attributes('data-label'))).toEqual(['Alux Nahual']);
  });
});
