import { flushPromises, mount } from '@vue/test-utils';
import { beforeEach, describe, expect, it } from 'vitest';

import App from '../App.vue';
import { FakeLive } from './fakeLive.js';

/** The page as main.js mounts it, over a FakeLive API (the ballot, or 404 when it is null);
 * without a locale, in its default language (Spanish). Polls follow each other at once. */
function mountApp(ballot = null, locale = undefined) {
  const live = new FakeLive(ballot);
  return mount(App, { props: { fetch: live.fetch, pollMs: 0, ...(locale && { locale }) } });
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
    FakeLive.instances = [];
  });

  it('shows the streamed logs newest at the bottom, and both charts of the counts, in Spanish', async () => {
    const wrapper = mountApp();
    const source = FakeLive.latest();
    expect(source.urls).toContain('/api/live');
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
    await source.deliver();

    const lines = wrapper.findAll('[role="log"] li').map((li) => li.text());
    expect(lines).toHaveLength(20);
    expect(lines[0]).toBe('12:00:20 wasm Alux Nahual — Conquista (1982) posición 1  vote-20');
    expect(lines[19]).toBe('12:00:39 grpc Alux Nahual — Conquista (1982) posición 10  vote-39');
    expect(wrapper.get('[data-testid="stream-state"]').text()).toBe('en vivo');
    expect(wrapper.get('[data-testid="total"]').text()).toBe('7 votos contados');

    const [bands, albums] = wrapper.findAll('figure');
    expect(bands.attributes('aria-label')).toBe('Votos por banda');
    expect(bands.findAll('li').map((li) => [li.attributes('data-label'), li.attributes('data-value')])).toEqual([
      ['Alux Nahual', '5'],
      ['Bohemia Suburbana', '2'],
    ]);
    expect(albums.attributes('aria-label')).toBe('Votos por álbum');
    expect(albums.findAll('li').map((li) => li.attributes('data-label'))).toEqual([
      'Conquista (Alux Nahual)',
      'Sombras en el Jardín (Bohemia Suburbana)',
    ]);
  });

  it('keeps the charts bounded: the top rows, one bar for the rest, and follows changes', async () => {
    const wrapper = mountApp();
    const source = FakeLive.latest();
    source.emit('results', {
      total: 60010,
      bands: [{ band: 'Alux Nahual', votes: 7 }, { band: 'Bohemia Suburbana', votes: 3 }],
      albums: [{ band: 'Alux Nahual', album: 'Conquista', votes: 7 }],
      otherBands: { count: 60000, votes: 60000 },
      otherAlbums: { count: 60001, votes: 60003 },
    });
    await source.deliver();
    const bars = (figure) => figure.findAll('li').map((li) => [li.attributes('data-label'), li.attributes('data-value')]);
    let [bands, albums] = wrapper.findAll('figure');
    expect(bars(bands)).toEqual([
      ['Alux Nahual', '7'],
      ['Bohemia Suburbana', '3'],
      ['otras 60,000 bandas', '60000'],
    ]);
    expect(bars(albums)).toEqual([
      ['Conquista (Alux Nahual)', '7'],
      ['otros 60,001 álbumes', '60003'],
    ]);

    // A change: Bohemia Suburbana passes Alux Nahual, Viernes Verde enters the top, Alux leaves it.
    source.emit('results', {
      total: 60020,
      bands: [{ band: 'Bohemia Suburbana', votes: 9 }, { band: 'Viernes Verde', votes: 8 }],
      albums: [{ band: 'Alux Nahual', album: 'Conquista', votes: 7 }],
      otherBands: { count: 60001, votes: 60007 },
      otherAlbums: { count: 60001, votes: 60013 },
    });
    await source.deliver();
    [bands, albums] = wrapper.findAll('figure');
    expect(bars(bands)).toEqual([
      ['Bohemia Suburbana', '9'],
      ['Viernes Verde', '8'],
      ['otras 60,001 bandas', '60007'],
    ]);
    expect(bars(albums)).toEqual([
      ['Conquista (Alux Nahual)', '7'],
      ['otros 60,001 álbumes', '60013'],
    ]);
    expect(wrapper.get('[data-testid="total"]').text()).toBe('60,020 votos contados');
  });

  it('says when the page is reconnecting and when a store is down', async () => {
    const wrapper = mountApp();
    const source = FakeLive.latest();
    source.emit('status', { mongo: 'down', redis: 'up' });
    await source.deliver();
    source.emit('error');
    await source.deliver();

    expect(wrapper.get('[data-testid="stream-state"]').text()).toBe('reconectando…');
    const alerts = wrapper.findAll('[role="alert"]').map((a) => a.text());
    expect(alerts).toEqual(['No se puede llegar al almacén de registros de votos; se muestran los últimos registros recibidos.']);
  });

  it('shows the ballot bands and albums without votes as zero bars, after the counted ones', async () => {
    const wrapper = mountApp(ballot);
    await flushPromises();
    const source = FakeLive.latest();
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
    await source.deliver();
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
    await source.deliver();
    [bands] = wrapper.findAll('figure');
    expect(bars(bands)).toEqual([
      ['Alux Nahual', '3'],
      ['otras 60,000 bandas', '60002'],
    ]);
  });

  it('shows the counted names alone when the API has no ballot', async () => {
    const wrapper = mountApp(null);
    await flushPromises();
    const source = FakeLive.latest();
    source.emit('results', {
      total: 1,
      bands: [{ band: 'Alux Nahual', votes: 1 }],
      albums: [{ band: 'Alux Nahual', album: 'Conquista', votes: 1 }],
      otherBands: { count: 0, votes: 0 },
      otherAlbums: { count: 0, votes: 0 },
    });
    await source.deliver();
    const [bands] = wrapper.findAll('figure');
    expect(bands.findAll('li').map((li) => li.attributes('data-label'))).toEqual(['Alux Nahual']);
  });

  it('speaks English when main.js picks it: every word, one vote and one rest in the singular', async () => {
    const wrapper = mountApp(null, 'en');
    await flushPromises();
    const source = FakeLive.latest();
    expect(wrapper.get('[data-testid="stream-state"]').text()).toBe('connecting…');
    expect(wrapper.findAll('figure').map((f) => f.text())).toEqual(['Votes per bandNo votes counted yet.', 'Votes per albumNo votes counted yet.']);
    expect(wrapper.get('section').text()).toContain('No log lines yet.');
    source.emit('status', { mongo: 'up', redis: 'down' });
    source.emit('logs', [log(1)]);
    source.emit('results', {
      total: 1,
      bands: [{ band: 'Alux Nahual', votes: 1 }],
      albums: [{ band: 'Alux Nahual', album: 'Conquista', votes: 1 }],
      otherBands: { count: 1, votes: 4 },
      otherAlbums: { count: 2, votes: 4 },
    });
    await source.deliver();

    expect(wrapper.get('[data-testid="stream-state"]').text()).toBe('live');
    expect(wrapper.get('[data-testid="total"]').text()).toBe('1 vote counted');
    expect(wrapper.get('[role="log"]').attributes('aria-label')).toBe('Last 20 votes');
    expect(wrapper.get('[role="log"] li').text()).toBe('12:00:01 grpc Alux Nahual — Conquista (1982) rank 2  vote-1');
    expect(wrapper.findAll('[role="alert"]').map((a) => a.text())).toEqual([
      'The vote counts store is unreachable; showing the last counts received.',
    ]);
    const [bands, albums] = wrapper.findAll('figure');
    expect(bands.attributes('aria-label')).toBe('Votes per band');
    expect(bands.findAll('.vote-chart__value').map((v) => v.text())).toEqual(['1 vote', '4 votes']);
    expect(bands.findAll('li').map((li) => li.attributes('data-label'))).toEqual(['Alux Nahual', '1 other band']);
    expect(albums.findAll('li').map((li) => li.attributes('data-label'))).toEqual(['Conquista (Alux Nahual)', '2 other albums']);
  });

  it('in Spanish, one vote and one rest take the singular too', async () => {
    const wrapper = mountApp();
    const source = FakeLive.latest();
    source.emit('results', {
      total: 1,
      bands: [{ band: 'Alux Nahual', votes: 1 }],
      albums: [{ band: 'Alux Nahual', album: 'Conquista', votes: 1 }],
      otherBands: { count: 1, votes: 4 },
      otherAlbums: { count: 1, votes: 4 },
    });
    await source.deliver();
    expect(wrapper.get('[data-testid="total"]').text()).toBe('1 voto contado');
    const [bands, albums] = wrapper.findAll('figure');
    expect(bands.findAll('.vote-chart__value').map((v) => v.text())).toEqual(['1 voto', '4 votos']);
    expect(bands.findAll('li').map((li) => li.attributes('data-label'))).toEqual(['Alux Nahual', 'otra banda']);
    expect(albums.findAll('li').map((li) => li.attributes('data-label'))).toEqual(['Conquista (Alux Nahual)', 'otro álbum']);
  });
});
