// tsc copies only .ts output; static assets (explorer page, test vectors) are read from source paths.
process.exit(0);
