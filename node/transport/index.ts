// The replica transport: the interface (types.ts), the TCP implementation, the
// reconnecting dialer, and the authenticated channel that runs over either transport.
export * from './dialer.js';
export * from './frame.js';
export * from './penalty-box.js';
export * from './rate-limit.js';
export * from './secure-channel.js';
export * from './tcp.js';
export * from './types.js';
