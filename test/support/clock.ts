/** A clock tests move by hand, instead of sleeping (one implementation for every test). */
export { TestClock } from '../factors/helpers.js';
