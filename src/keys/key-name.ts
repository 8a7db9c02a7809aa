/** The longest key name, after trimming (the schema and the store check it; the CLI too). */
export const MAX_KEY_NAME = 100;
