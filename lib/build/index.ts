/**
 * lib/build: images made from instructions. Today the Dockerfile instructions `import --change`
 * applies; the builder (`nsbox build`) extends the same parser. Sits above image, storage and
 * runtime, below engine, cli and api.
 */
export { applyChanges } from './dockerfile/changes.js';
export { importImage, type ImportImageOptions, type ImportSource } from './import.js';
