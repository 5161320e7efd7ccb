// The page's words in its two languages. Spanish is the default: the contest's audience is
// Guatemalan. English is shown when the browser prefers it to Spanish (navigator.languages, the
// same preference the browser sends as Accept-Language).

/** The languages the page speaks; the first is the default. */
export const LOCALES = ['es', 'en'];

/**
 * The page's language for the browser's preferred languages, most preferred first (BCP 47 tags
 * such as "es-GT" or "en-US"): the first of them the page speaks, else Spanish.
 * @param {readonly string[] | undefined} languages navigator.languages
 * @returns {'es' | 'en'}
 */
export function pickLocale(languages) {
  for (const tag of languages ?? []) {
    const base = String(tag).toLowerCase().split('-')[0];
    if (LOCALES.includes(base)) return base;
  }
  return LOCALES[0];
}

/**
 * One language's words: plain strings, and functions where a number changes them.
 * @typedef {object} Messages
 * @property {string} lang the page's lang attribute
 * @property {(n: number) => string} number a count as the language writes it
 * @property {(n: number) => string} total the header's total
 * @property {(n: number) => string} votes a bar's count, read out by screen readers
 * @property {(n: number) => string} otherBands the bar for the bands the API sums
 * @property {(n: number) => string} otherAlbums the bar for the albums the API sums
 * @property {(rank: number) => string} rank a log line's rank
 */

const es = new Intl.NumberFormat('es-GT');
const en = new Intl.NumberFormat('en');

/** @type {Record<'es' | 'en', Messages & Record<string, any>>} */
const MESSAGES = {
  es: {
    lang: 'es',
    number: (n) => es.format(n),
    total: (n) => `${es.format(n)} ${n === 1 ? 'voto contado' : 'votos contados'}`,
    votes: (n) => (n === 1 ? ' voto' : ' votos'),
    otherBands: (n) => (n === 1 ? 'otra banda' : `otras ${es.format(n)} bandas`),
    otherAlbums: (n) => (n === 1 ? 'otro álbum' : `otros ${es.format(n)} álbumes`),
    rank: (rank) => `posición ${rank}`,
    lastVotes: 'Últimos 20 votos',
    perBand: 'Votos por banda',
    perAlbum: 'Votos por álbum',
    noLines: 'Aún no hay registros de votos.',
    noVotes: 'Aún no hay votos contados.',
    mongoDown: 'No se puede llegar al almacén de registros de votos; se muestran los últimos registros recibidos.',
    redisDown: 'No se puede llegar al almacén de conteos; se muestran los últimos conteos recibidos.',
    states: { live: 'en vivo', connecting: 'conectando…', reconnecting: 'reconectando…' },
  },
  en: {
    lang: 'en',
    number: (n) => en.format(n),
    total: (n) => `${en.format(n)} ${n === 1 ? 'vote' : 'votes'} counted`,
    votes: (n) => (n === 1 ? ' vote' : ' votes'),
    otherBands: (n) => `${en.format(n)} other ${n === 1 ? 'band' : 'bands'}`,
    otherAlbums: (n) => `${en.format(n)} other ${n === 1 ? 'album' : 'albums'}`,
    rank: (rank) => `rank ${rank}`,
    lastVotes: 'Last 20 votes',
    perBand: 'Votes per band',
    perAlbum: 'Votes per album',
    noLines: 'No log lines yet.',
    noVotes: 'No votes counted yet.',
    mongoDown: 'The vote log store is unreachable; showing the last logs received.',
    redisDown: 'The vote counts store is unreachable; showing the last counts received.',
    states: { live: 'live', connecting: 'connecting…', reconnecting: 'reconnecting…' },
  },
};

/**
 * The words of a language the page speaks (Spanish for any other).
 * @param {string} locale
 */
export function messagesFor(locale) {
  return MESSAGES[locale] ?? MESSAGES[LOCALES[0]];
}
