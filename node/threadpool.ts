// LevelDB (classic-level) runs every read and write on libuv's thread pool, 4 threads by
// default. A validator's durable consensus writes (fsync) can occupy all of them, and API
// reads then queue behind the fsyncs. A larger pool keeps reads flowing. libuv reads the
// variable when the pool is first used, so this module is imported first by the CLI.
if (process.env.UV_THREADPOOL_SIZE === undefined) process.env.UV_THREADPOOL_SIZE = '16';

export {};
