import { describe, expect, it } from 'vitest';

import { messagesFor, pickLocale } from '../i18n.js';

describe('pickLocale', () => {
  it('is Spanish by default: no languages, or none the page speaks', () => {
    expect(pickLocale(undefined)).toBe('es');
    expect(pickLocale([])).toBe('es');
    expect(pickLocale(['fr-FR', 'de'])).toBe('es');
  });

  it('is the first language the page speaks, in the browser order', () => {
    expect(pickLocale(['en-US', 'en'])).toBe('en');
    expect(pickLocale(['fr', 'EN-gb', 'es'])).toBe('en');
    expect(pickLocale(['es-GT', 'en-US'])).toBe('es');
    expect(pickLocale(['de', 'es-419', 'en'])).toBe('es');
  });
});

describe('messagesFor', () => {
  it('has the same words in both languages, and Spanish for any other', () => {
    const keys = (locale) => Object.keys(messagesFor(locale)).sort();
    expect(keys('en')).toEqual(keys('es'));
    expect(Object.keys(messagesFor('en').states)).toEqual(Object.keys(messagesFor('es').states));
    expect(messagesFor('fr')).toBe(messagesFor('es'));
  });

  it('agrees in number and groups thousands as Guatemala does', () => {
    const es = messagesFor('es');
    expect([es.total(0), es.total(1), es.total(1234)]).toEqual(['0 votos contados', '1 voto contado', '1,234 votos contados']);
    expect([es.otherAlbums(1), es.otherAlbums(2)]).toEqual(['otro álbum', 'otros 2 álbumes']);
    const en = messagesFor('en');
    expect([en.total(1), en.total(60000)]).toEqual(['1 vote counted', '60,000 votes counted']);
  });
});
