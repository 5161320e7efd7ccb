// Errors the routes turn into HTTP statuses (app.js's error handler).

/** A query parameter is malformed or unknown: 400 naming it. */
export class BadRequestError extends Error {
  /**
   * @param {string} field the query parameter at fault
   * @param {string} message what is wrong with it
   */
  constructor(field, message) {
    super(`${field}: ${message}`);
    this.name = 'BadRequestError';
    this.field = field;
  }
}

/** MongoDB or Redis failed to answer: 503, and the client retries later. */
export class UnavailableError extends Error {
  /**
   * @param {'mongo' | 'redis'} store which store failed
   * @param {unknown} cause the driver's error
   */
  constructor(store, cause) {
    super(`${store} unavailable`, { cause });
    this.name = 'UnavailableError';
    this.store = store;
  }
}
