import { mount } from '@vue/test-utils';
import { beforeEach, describe, expect, it } from 'vitest';

import App from '../App.vue';
import { FakeEventSource } from './fakeEventSource.js';

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
    const wrapper = mount(App, { props: { eventSource: FakeEventSource } });
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
    const wrapper = mount(App, { props: { eventSource: FakeEventSource } });
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
    const wrapper = mount(App, { props: { eventSource: FakeEventSource } });
    const source = FakeEventSource.latest();
    source.emit('open');
    source.emit('status', { mongo: 'down', redis: 'up' });
    source.emit('error');
    await wrapper.vm.$nextTick();

    expect(wrapper.get('[data-testid="stream-state"]').text()).toBe('reconnecting…');
    const alerts = wrapper.findAll('[role="alert"]').map((a) => a.text());
    expect(alerts).toEqual(['The vote log store is unreachable; showing the last logs received.']);
  });
});
